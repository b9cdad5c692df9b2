//! The report of one sync, the same for every source: what it wrote, what it could not, and
//! the source's own account of what it read.

use std::fmt;

/// The counts of one sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Objects created.
    pub created: usize,
    /// Owned objects updated.
    pub updated: usize,
    /// Owned objects retired (Users disabled, Sessions ended) because they left the source.
    pub retired: usize,
    /// Owned objects already right (or held as they are).
    pub unchanged: usize,
    /// Desired objects not applied: bad source data plus names taken by objects managed by
    /// hand.
    pub skipped: usize,
    /// Source records (entries, rows) with bad data.
    pub skipped_records: usize,
    /// Writes that failed (logged one by one).
    pub failed: usize,
    /// The word for `retired` in this source ([`Source::RETIRED_AS`]: `disabled`, `ended`).
    ///
    /// [`Source::RETIRED_AS`]: homestead_core::sources::Source::RETIRED_AS
    pub retired_as: &'static str,
}

impl fmt::Display for SyncCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "created {}, updated {}, {} {}, unchanged {}, skipped {}, failed {}",
            self.created,
            self.updated,
            self.retired_as,
            self.retired,
            self.unchanged,
            self.skipped,
            self.failed
        )
    }
}

/// Everything one sync did. `D` is the source's own account of what it read and left out
/// (LDAP: the directory entries skipped; ISPyB: the rows, members and groups skipped and the
/// Sessions held).
#[derive(Debug, Clone, Default)]
pub struct SyncReport<D> {
    /// The counts.
    pub counts: SyncCounts,
    /// Desired objects not applied because an object managed by hand has the name:
    /// `(name, reason)`.
    pub skipped: Vec<(String, String)>,
    /// Writes that failed: `(name, error)`.
    pub failures: Vec<(String, String)>,
    /// What the source read and left out.
    pub details: D,
}

impl SyncReport<()> {
    /// The report with the source's account added.
    pub fn with_details<D>(self, details: D) -> SyncReport<D> {
        SyncReport {
            counts: self.counts,
            skipped: self.skipped,
            failures: self.failures,
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_read_well_with_each_sources_word_for_retired() {
        let counts = SyncCounts {
            created: 1,
            updated: 2,
            retired: 3,
            unchanged: 4,
            skipped: 5,
            skipped_records: 6,
            failed: 0,
            retired_as: "ended",
        };
        assert_eq!(
            counts.to_string(),
            "created 1, updated 2, ended 3, unchanged 4, skipped 5, failed 0"
        );
        let counts = SyncCounts {
            retired_as: "disabled",
            ..counts
        };
        assert_eq!(
            counts.to_string(),
            "created 1, updated 2, disabled 3, unchanged 4, skipped 5, failed 0"
        );
    }
}
