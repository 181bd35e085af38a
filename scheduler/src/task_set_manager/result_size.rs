//! Result-size accounting (`ember.driver.maxResultSize`, Spark's `canFetchMoreResults`) and
//! Spark's human-readable byte sizes.

use crate::conf::keys;

/// Running total of the result bytes a task set has accepted.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResultSize {
    /// The limit in bytes; 0 means none.
    max: u64,
    /// Bytes accepted so far.
    total: u64,
    /// Results counted so far.
    count: u64,
}

impl ResultSize {
    pub(crate) fn new(max: u64) -> ResultSize {
        ResultSize {
            max,
            total: 0,
            count: 0,
        }
    }

    /// Counts one result of `size` bytes; the abort message if the total is now over the
    /// limit.
    pub(crate) fn add(&mut self, size: u64) -> Result<(), String> {
        self.total = self.total.saturating_add(size);
        self.count += 1;
        if self.max > 0 && self.total > self.max {
            Err(format!(
                "Total size of serialized results of {} tasks ({}) is bigger than {} ({})",
                self.count,
                bytes_to_string(self.total),
                keys::MAX_RESULT_SIZE,
                bytes_to_string(self.max)
            ))
        } else {
            Ok(())
        }
    }

    /// Takes back a result counted by [`ResultSize::add`] that was then discarded (an
    /// attempt that finished after another attempt of its task had succeeded).
    pub(crate) fn undo(&mut self, size: u64) {
        self.total = self.total.saturating_sub(size);
        self.count = self.count.saturating_sub(1);
    }
}

/// A byte count as Spark's `Utils.bytesToString` prints it: the largest binary unit of which
/// the value is at least **two** (so 1 GiB prints as `1024.0 MiB` and 2 GiB as `2.0 GiB`),
/// with one decimal rounded half up. Below 2 KiB it prints bytes: `1023.0 B`.
pub(crate) fn bytes_to_string(size: u64) -> String {
    const UNITS: [(&str, u32); 6] = [
        ("EiB", 60),
        ("PiB", 50),
        ("TiB", 40),
        ("GiB", 30),
        ("MiB", 20),
        ("KiB", 10),
    ];
    for (name, shift) in UNITS {
        let unit = 1u128 << shift;
        if u128::from(size) >= 2 * unit {
            // Tenths, rounded half up, in integers: f64 formatting rounds half to even on
            // the binary value and would print 2.25 KiB as "2.2 KiB" where Spark prints 2.3.
            let tenths = (u128::from(size) * 10 + unit / 2) / unit;
            return format!("{}.{} {name}", tenths / 10, tenths % 10);
        }
    }
    format!("{size}.0 B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_spark() {
        assert_eq!(bytes_to_string(0), "0.0 B");
        assert_eq!(bytes_to_string(2047), "2047.0 B");
        assert_eq!(bytes_to_string(2048), "2.0 KiB");
        assert_eq!(bytes_to_string(2304), "2.3 KiB"); // 2.25 rounds half up
        assert_eq!(bytes_to_string(10 << 20), "10.0 MiB");
        assert_eq!(bytes_to_string(1 << 30), "1024.0 MiB");
        assert_eq!(bytes_to_string(2 << 30), "2.0 GiB");
        assert_eq!(bytes_to_string((3 << 40) + (1 << 39)), "3.5 TiB");
        assert_eq!(bytes_to_string(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn limit_is_on_the_running_total() {
        let mut sizes = ResultSize::new(2 << 20);
        for _ in 0..10 {
            assert!(sizes.add(1024).is_ok());
        }
        let message = sizes.add(2 << 20).expect_err("over the limit");
        assert_eq!(
            message,
            "Total size of serialized results of 11 tasks (2.0 MiB) is bigger than \
             ember.driver.maxResultSize (2.0 MiB)"
        );
        let mut unlimited = ResultSize::new(0);
        assert!(unlimited.add(u64::MAX).is_ok());
    }
}
