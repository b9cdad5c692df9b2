//! The committed CRDs in `manifests/crds/` must be exactly what the code generates.

use std::path::Path;

use homestead::commands::crds::{crd_file_name, crd_yaml, crds};

#[test]
fn committed_crds_match_the_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/crds");
    let mut stale = Vec::new();
    for crd in crds() {
        let file = crd_file_name(&crd);
        let want = crd_yaml(&crd).expect("CRD serializes");
        match std::fs::read_to_string(dir.join(&file)) {
            Ok(have) if have == want => {}
            Ok(_) => stale.push(format!("manifests/crds/{file} differs from the code")),
            Err(e) => stale.push(format!("manifests/crds/{file} cannot be read: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nThe User/Session resources changed; regenerate the committed CRDs with\n    \
         cargo run -- crds --out manifests/crds\nand commit the result.",
        stale.join("\n")
    );
}
