//! Standard base64 (RFC 4648, `+/`, padded) for the patch of a response, written straight
//! into the response buffer.
//!
//! On x86-64 with AVX2 (or SSSE3), chosen at run time, the bulk is encoded with SIMD in
//! the manner of Muła and Lemire ("Faster Base64 Encoding and Decoding using AVX2
//! Instructions", 2018): each 32-bit lane takes three input bytes, two multiplications
//! spread their four 6-bit groups into four bytes, and a 16-entry byte shuffle turns each
//! 6-bit value into its character — 24 input bytes to 32 characters in about fifteen
//! instructions. The last bytes, and every byte on other targets, go through the scalar
//! encoder: six bytes at a time as one big-endian word, 12 bits at a time looked up in a
//! 4,096-entry table of output pairs. Every path writes the same bytes as the `base64`
//! crate's standard engine (tested against it, each path on its own).

use std::mem::MaybeUninit;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The two output characters of each 12-bit value, first character in the low byte.
static PAIRS: [u16; 4096] = {
    let mut table = [0u16; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = ALPHABET[i >> 6] as u16 | (ALPHABET[i & 63] as u16) << 8;
        i += 1;
    }
    table
};

/// Length of the padded encoding of `len` bytes.
pub(crate) const fn encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

/// Which encoder runs the bulk of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Ssse3,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Path {
    /// The fastest encoder this CPU runs (the detection is cached by std).
    fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                return Self::Avx2;
            }
            if std::arch::is_x86_feature_detected!("ssse3") {
                return Self::Ssse3;
            }
        }
        Self::Scalar
    }
}

/// Appends the padded standard base64 encoding of `input` to `out`.
pub(crate) fn encode_into(out: &mut Vec<u8>, input: &[u8]) {
    encode_with(Path::best(), out, input);
}

fn encode_with(path: Path, out: &mut Vec<u8>, input: &[u8]) {
    let len = encoded_len(input.len());
    out.reserve(len);
    let start = out.len();
    // Written in place, in the spare capacity, without zero-filling it first: every
    // encoder below only stores into `dst`, and between them they store every one of its
    // `len` bytes (the SIMD path and the words the first characters, `encode_tail`
    // exactly the padded encoding of the rest).
    let Some(dst) = out.spare_capacity_mut().get_mut(..len) else {
        // `reserve` made room for `len` more bytes: never taken.
        return;
    };
    let (read, written) = match path {
        Path::Scalar => (0, 0),
        // SAFETY: `Path::best` chose these only on a CPU with the feature (and the tests
        // force them only after checking the same).
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => unsafe { x86::encode_avx2(input, dst) },
        #[cfg(target_arch = "x86_64")]
        Path::Ssse3 => unsafe { x86::encode_ssse3(input, dst) },
    };
    let (input, dst) = (&input[read..], &mut dst[written..]);
    let (read, written) = encode_words(input, dst);
    encode_tail(&input[read..], &mut dst[written..]);
    // SAFETY: the `len` bytes after `start` are within the capacity (`reserve`, and `dst`
    // is `len` long) and were all initialised above.
    unsafe { out.set_len(start + len) };
}

/// Six bytes to eight characters at a time, reading eight (while eight are left);
/// returns the bytes read and the characters written.
fn encode_words(input: &[u8], dst: &mut [MaybeUninit<u8>]) -> (usize, usize) {
    let (mut read, mut written) = (0, 0);
    while let (Some(word), Some(quad)) = (
        input.get(read..).and_then(<[u8]>::first_chunk::<8>),
        dst.get_mut(written..)
            .and_then(<[MaybeUninit<u8>]>::first_chunk_mut::<8>),
    ) {
        let w = u64::from_be_bytes(*word);
        let pair = |shift: u32| u64::from(PAIRS[(w >> shift) as usize & 0xfff]);
        let chars = pair(52) | pair(40) << 16 | pair(28) << 32 | pair(16) << 48;
        *quad = chars.to_le_bytes().map(MaybeUninit::new);
        read += 6;
        written += 8;
    }
    (read, written)
}

/// Encodes the last bytes (fewer than eight, or all of them on the words' tail) into
/// `dst`, exactly their padded encoded length: every byte of `dst` is written.
fn encode_tail(input: &[u8], dst: &mut [MaybeUninit<u8>]) {
    let (groups, rest) = input.as_chunks::<3>();
    let (quads, _) = dst.as_chunks_mut::<4>();
    let pair = |bits: usize| PAIRS[bits & 0xfff];
    for (group, quad) in groups.iter().zip(quads.iter_mut()) {
        let n = usize::from(group[0]) << 16 | usize::from(group[1]) << 8 | usize::from(group[2]);
        let chars = u32::from(pair(n >> 12)) | u32::from(pair(n)) << 16;
        *quad = chars.to_le_bytes().map(MaybeUninit::new);
    }
    let Some(last) = quads.last_mut() else {
        return;
    };
    match *rest {
        [a] => {
            let [x, y] = pair(usize::from(a) << 4).to_le_bytes();
            *last = [x, y, b'=', b'='].map(MaybeUninit::new);
        }
        [a, b] => {
            let n = usize::from(a) << 10 | usize::from(b) << 2;
            let [x, y] = pair(n >> 6).to_le_bytes();
            *last = [x, y, ALPHABET[n & 63], b'='].map(MaybeUninit::new);
        }
        _ => {}
    }
}

/// The SIMD encoders. Each 128-bit lane encodes 12 input bytes (in its low 12 bytes) into
/// 16 characters, in two steps:
///
/// - split: a byte shuffle puts each group of three bytes `a b c` into a 32-bit lane as
///   the bytes `b a c b`; masking and two 16-bit multiplications (a high half shifting
///   right, a low half shifting left) move the four 6-bit values into the lane's four
///   bytes, first value in the low byte;
/// - translate: each 6-bit value plus an offset chosen by its range (`A`–`Z`, `a`–`z`,
///   `0`–`9`, `+`, `/`) is its character; the range is turned into an index 0..=13 by a
///   saturating subtraction and one comparison, and the offset is looked up with a byte
///   shuffle of a 16-entry table.
///
/// Loads and stores are unaligned and stay within the slices they are given (checked by
/// the loop conditions); the rest is register arithmetic. The output is only stored to,
/// never read, so it may be uninitialised (the spare capacity of the response).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::mem::MaybeUninit;

    use std::arch::x86_64::{
        __m128i, __m256i, _mm_add_epi8, _mm_and_si128, _mm_cmpgt_epi8, _mm_loadu_si128,
        _mm_mulhi_epu16, _mm_mullo_epi16, _mm_or_si128, _mm_set1_epi8, _mm_set1_epi32,
        _mm_setr_epi8, _mm_shuffle_epi8, _mm_storeu_si128, _mm_subs_epu8, _mm256_add_epi8,
        _mm256_and_si256, _mm256_blend_epi16, _mm256_cmpgt_epi8, _mm256_mullo_epi16,
        _mm256_or_si256, _mm256_set_m128i, _mm256_set1_epi8, _mm256_set1_epi32,
        _mm256_shuffle_epi8, _mm256_srli_epi16, _mm256_storeu_si256, _mm256_subs_epu8,
    };

    /// The masks and multipliers of the split step (see the module comment).
    const HIGH_MASK: i32 = 0x0fc0_fc00;
    const HIGH_SHIFT: i32 = 0x0400_0040;
    const LOW_MASK: i32 = 0x003f_03f0;
    const LOW_SHIFT: i32 = 0x0100_0010;

    /// Character minus value for each range index of the translate step: 0 for `a`–`z`,
    /// 1–10 for `0`–`9`, 11 for `+`, 12 for `/`, 13 for `A`–`Z`.
    const OFFSETS: [i8; 16] = {
        let digit = b'0' as i8 - 52;
        [
            b'a' as i8 - 26,
            digit,
            digit,
            digit,
            digit,
            digit,
            digit,
            digit,
            digit,
            digit,
            digit,
            b'+' as i8 - 62,
            b'/' as i8 - 63,
            b'A' as i8,
            0,
            0,
        ]
    };

    /// The multipliers of the SSSE3 split step. They are passed through `black_box` once
    /// per call: seeing constant powers of two, the compiler replaces each 16-bit
    /// multiplication (one instruction) with a longer shift sequence.
    #[derive(Clone, Copy)]
    struct Shifts<V> {
        high: V,
        low: V,
    }

    /// The byte shuffle of the split step: `b a c b` for each group `a b c`.
    const SPREAD: [i8; 16] = [1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10];

    #[target_feature(enable = "ssse3")]
    fn bytes128(a: [i8; 16]) -> __m128i {
        _mm_setr_epi8(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13],
            a[14], a[15],
        )
    }

    /// `a` in both 128-bit lanes.
    #[target_feature(enable = "avx2")]
    fn bytes256(a: [i8; 16]) -> __m256i {
        let lane = bytes128(a);
        _mm256_set_m128i(lane, lane)
    }

    #[target_feature(enable = "ssse3")]
    fn encode_lane(input: __m128i, shifts: Shifts<__m128i>) -> __m128i {
        let spread = _mm_shuffle_epi8(input, bytes128(SPREAD));
        let high = _mm_mulhi_epu16(
            _mm_and_si128(spread, _mm_set1_epi32(HIGH_MASK)),
            shifts.high,
        );
        let low = _mm_mullo_epi16(_mm_and_si128(spread, _mm_set1_epi32(LOW_MASK)), shifts.low);
        let values = _mm_or_si128(high, low);
        let range = _mm_or_si128(
            _mm_subs_epu8(values, _mm_set1_epi8(51)),
            _mm_and_si128(_mm_cmpgt_epi8(_mm_set1_epi8(26), values), _mm_set1_epi8(13)),
        );
        _mm_add_epi8(_mm_shuffle_epi8(bytes128(OFFSETS), range), values)
    }

    /// `encode_lane` for two lanes. The high half of the split is two shifts and a blend
    /// (`std::arch`'s portable `_mm256_mulhi_epu16` compiles to a widening sequence twice
    /// as long); the low half is one multiplication by `low` (black-boxed: seeing
    /// constant powers of two, the compiler would make it two shifts and a blend).
    #[target_feature(enable = "avx2")]
    fn encode_lanes(input: __m256i, low: __m256i) -> __m256i {
        let spread = _mm256_shuffle_epi8(input, bytes256(SPREAD));
        let masked = _mm256_and_si256(spread, _mm256_set1_epi32(HIGH_MASK));
        let high = _mm256_blend_epi16::<0b1010_1010>(
            _mm256_srli_epi16::<10>(masked),
            _mm256_srli_epi16::<6>(masked),
        );
        let low = _mm256_mullo_epi16(_mm256_and_si256(spread, _mm256_set1_epi32(LOW_MASK)), low);
        let values = _mm256_or_si256(high, low);
        let range = _mm256_or_si256(
            _mm256_subs_epu8(values, _mm256_set1_epi8(51)),
            _mm256_and_si256(
                _mm256_cmpgt_epi8(_mm256_set1_epi8(26), values),
                _mm256_set1_epi8(13),
            ),
        );
        _mm256_add_epi8(_mm256_shuffle_epi8(bytes256(OFFSETS), range), values)
    }

    /// Encodes 24 bytes to 32 characters at a time while 28 bytes are left to read (each
    /// lane loads 16 bytes and uses 12); returns the bytes read and characters written.
    #[target_feature(enable = "avx2")]
    pub(super) fn encode_avx2(input: &[u8], dst: &mut [MaybeUninit<u8>]) -> (usize, usize) {
        let low = std::hint::black_box(_mm256_set1_epi32(LOW_SHIFT));
        // Whole blocks: 28 bytes to read from each block's start, 32 characters to store.
        let blocks = (input.len().saturating_sub(4) / 24).min(dst.len() / 32);
        for block in 0..blocks {
            let (read, written) = (block * 24, block * 32);
            // SAFETY: `read + 28 <= input.len()` and `written + 32 <= dst.len()` for
            // every block counted above: the two 16-byte loads, at `read` and `read + 12`,
            // and the 32-byte store lie within the slices.
            unsafe {
                let at = input.as_ptr().add(read);
                let lanes = _mm256_set_m128i(
                    _mm_loadu_si128(at.add(12).cast()),
                    _mm_loadu_si128(at.cast()),
                );
                let chars = encode_lanes(lanes, low);
                _mm256_storeu_si256(dst.as_mut_ptr().add(written).cast(), chars);
            }
        }
        (blocks * 24, blocks * 32)
    }

    /// Encodes 12 bytes to 16 characters at a time while 16 bytes are left to read;
    /// returns the bytes read and characters written.
    #[target_feature(enable = "ssse3")]
    pub(super) fn encode_ssse3(input: &[u8], dst: &mut [MaybeUninit<u8>]) -> (usize, usize) {
        let shifts = Shifts {
            high: std::hint::black_box(_mm_set1_epi32(HIGH_SHIFT)),
            low: std::hint::black_box(_mm_set1_epi32(LOW_SHIFT)),
        };
        let mut blocks = 0;
        for (bytes, out) in input.windows(16).step_by(12).zip(dst.chunks_exact_mut(16)) {
            // SAFETY: a 16-byte load of the 16 bytes of `bytes`.
            let lane = unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) };
            let chars = encode_lane(lane, shifts);
            // SAFETY: a 16-byte store into the 16 bytes of `out`.
            unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), chars) };
            blocks += 1;
        }
        (blocks * 12, blocks * 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;

    /// Every encoder this CPU runs, the scalar one first.
    fn paths() -> Vec<Path> {
        #[allow(unused_mut)]
        let mut paths = vec![Path::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("ssse3") {
                paths.push(Path::Ssse3);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                paths.push(Path::Avx2);
            }
        }
        paths
    }

    /// Encodes `input` after a prefix twice: into a buffer with no spare capacity (so the
    /// encoder reserves), and into one whose spare capacity holds old bytes (so a byte the
    /// encoder failed to write would show); both must give the same characters.
    fn encode(path: Path, input: &[u8]) -> Vec<u8> {
        let mut out = b"prefix".to_vec();
        encode_with(path, &mut out, input);
        assert_eq!(out.len(), 6 + encoded_len(input.len()));
        assert_eq!(&out[..6], b"prefix");
        let mut recycled = b"prefix".to_vec();
        recycled.resize(6 + encoded_len(input.len()) + 40, b'!');
        recycled.truncate(6);
        let capacity = recycled.capacity();
        encode_with(path, &mut recycled, input);
        assert_eq!(
            recycled.capacity(),
            capacity,
            "no growth when there is room"
        );
        assert_eq!(recycled, out, "{path:?} into a recycled buffer");
        out.split_off(6)
    }

    fn expected(input: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(input)
            .into_bytes()
    }

    #[test]
    fn rfc_4648_vectors() {
        for path in paths() {
            for (input, expected) in [
                ("", ""),
                ("f", "Zg=="),
                ("fo", "Zm8="),
                ("foo", "Zm9v"),
                ("foob", "Zm9vYg=="),
                ("fooba", "Zm9vYmE="),
                ("foobar", "Zm9vYmFy"),
            ] {
                assert_eq!(
                    encode(path, input.as_bytes()),
                    expected.as_bytes(),
                    "{path:?} {input:?}"
                );
            }
            assert_eq!(encode(path, &[0xfb, 0xff, 0xbf]), b"+/+/", "{path:?}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn this_cpu_has_a_simd_path() {
        // The benchmark machines and CI run x86-64 with AVX2; if this fails the SIMD
        // encoders went untested.
        assert!(paths().contains(&Path::Avx2), "{:?}", paths());
    }

    #[test]
    fn every_character_at_every_position_and_every_tail() {
        // Each 6-bit value at each of the four positions of a group, in inputs long
        // enough for several SIMD blocks, cut at every length.
        let input: Vec<u8> = (0..=255u8)
            .chain((0..=255u8).rev())
            .cycle()
            .take(3 * 256)
            .collect();
        for path in paths() {
            for len in 0..input.len() {
                assert_eq!(
                    encode(path, &input[..len]),
                    expected(&input[..len]),
                    "{path:?} {len}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn same_as_the_base64_crate(input in proptest::collection::vec(any::<u8>(), 0..10_000)) {
            let expected = expected(&input);
            for path in paths() {
                prop_assert_eq!(&encode(path, &input), &expected, "{:?}", path);
            }
            let mut out = Vec::new();
            encode_into(&mut out, &input);
            prop_assert_eq!(out, expected);
        }
    }
}
