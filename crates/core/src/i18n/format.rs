//! Numbers, money, sizes, durations and times, in a locale's own words
//! (its `format.*` and `time.*` texts).

use super::{I18n, Key};

impl I18n {
    /// `12,345` (the locale's `format.group`).
    pub fn count(&self, n: u64) -> String {
        group(&n.to_string(), self.t(Key::FormatGroup))
    }

    /// `x` with `decimals` decimals, grouped, with the locale's separators.
    pub fn number(&self, x: f64, decimals: usize) -> String {
        let s = format!("{:.*}", decimals, x.abs());
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let mut out = String::new();
        if x < 0.0 && s.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
            out.push('-');
        }
        out.push_str(&group(int, self.t(Key::FormatGroup)));
        if !frac.is_empty() {
            out.push_str(self.t(Key::FormatDecimal));
            out.push_str(frac);
        }
        out
    }

    /// US dollars: `$0.0123` for small sums, `$12.35` for larger ones, and
    /// `< $0.0001` for a sum that four decimals would show as zero (it is
    /// not zero).
    pub fn usd(&self, x: f64) -> String {
        let amount = |d| self.f(Key::FormatUsd, &[("amount", &self.number(x.max(0.0), d))]);
        if x <= 0.0 {
            amount(2)
        } else if x < 0.000_05 {
            let tiny = self.f(Key::FormatUsd, &[("amount", &self.number(0.0001, 4))]);
            self.f(Key::FormatBelow, &[("amount", &tiny)])
        } else if x < 1.0 {
            amount(4)
        } else {
            amount(2)
        }
    }

    /// `4.2 MB` (decimal units, as file managers show them).
    pub fn bytes(&self, n: u64) -> String {
        let x = n as f64;
        if x < 1e3 {
            format!("{n} B")
        } else if x < 1e6 {
            format!("{} kB", self.number(x / 1e3, 1))
        } else if x < 1e9 {
            format!("{} MB", self.number(x / 1e6, 1))
        } else {
            format!("{} GB", self.number(x / 1e9, 2))
        }
    }

    /// A duration in its largest fitting unit: `45 s`, `12 min`,
    /// `3 h 5 min`, `2 d 4 h`.
    pub fn duration(&self, secs: i64) -> String {
        let s = secs.max(0);
        match s {
            0..60 => self.f(Key::TimeSeconds, &[("n", &s)]),
            60..3600 => self.f(Key::TimeMinutes, &[("n", &(s / 60))]),
            3600..86_400 => match (s / 3600, s % 3600 / 60) {
                (h, 0) => self.f(Key::TimeHours, &[("n", &h)]),
                (h, m) => self.f(Key::TimeHoursMinutes, &[("h", &h), ("m", &m)]),
            },
            _ => match (s / 86_400, s % 86_400 / 3600) {
                (d, 0) => self.f(Key::TimeDays, &[("n", &d)]),
                (d, h) => self.f(Key::TimeDaysHours, &[("d", &d), ("h", &h)]),
            },
        }
    }

    /// `5 min ago`, `in 5 min`, or `just now`.
    pub fn relative(&self, ts: i64, now: i64) -> String {
        if ts > now + 1 {
            self.f(Key::TimeIn, &[("t", &self.duration(ts - now))])
        } else if now - ts < 5 {
            self.t(Key::TimeJustNow).to_owned()
        } else {
            self.f(Key::TimeAgo, &[("t", &self.duration(now - ts))])
        }
    }
}

/// `2026-11-25 16:49:02 UTC`: the same in every language (a reader's own
/// time zone and format are the browser's to show).
pub fn utc(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn group(digits: &str, sep: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * sep.len());
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english() {
        let en = I18n::english();
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_711_471_533), "2024-03-26 16:45:33 UTC");
        assert_eq!(en.duration(59), "59 s");
        assert_eq!(en.duration(3_660), "1 h 1 min");
        assert_eq!(en.duration(90_000), "1 d 1 h");
        assert_eq!(en.relative(100, 400), "5 min ago");
        assert_eq!(en.relative(500, 400), "in 1 min");
        assert_eq!(en.relative(398, 400), "just now");
        assert_eq!(en.count(1_234_567), "1,234,567");
        assert_eq!(en.count(12), "12");
        assert_eq!(en.number(-1234.5, 1), "-1,234.5");
        assert_eq!(en.bytes(999), "999 B");
        assert_eq!(en.bytes(4_200_000), "4.2 MB");
        assert_eq!(en.usd(0.01234), "$0.0123");
        assert_eq!(en.usd(12.345), "$12.35");
        assert_eq!(en.usd(1234.5), "$1,234.50");
        assert_eq!(en.usd(0.000_003), "< $0.0001");
        assert_eq!(en.usd(0.0), "$0.00");
        assert_eq!(
            en.plural(Key::CommonRequestsOne, Key::CommonRequestsOther, 1),
            "1 request"
        );
        assert_eq!(
            en.plural(Key::CommonRequestsOne, Key::CommonRequestsOther, 1200),
            "1,200 requests"
        );
    }

    #[test]
    fn korean() {
        let ko = I18n::get("ko");
        assert_eq!(ko.relative(100, 400), "5분 전");
        assert_eq!(ko.relative(500, 400), "1분 후");
        assert_eq!(ko.relative(398, 400), "방금");
        assert_eq!(ko.duration(3_660), "1시간 1분");
        assert_eq!(ko.usd(12.345), "US$12.35");
        assert_eq!(
            ko.plural(Key::CommonRequestsOne, Key::CommonRequestsOther, 1),
            "요청 1건"
        );
    }
}
