//! Synthetic holders: birth dates with their Japanese era digit, and My Numbers with a valid
//! check digit.

use super::TestPkiError;

/// A Gregorian calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub y: u16,
    /// Month 1–12.
    pub m: u8,
    /// Day 1–31.
    pub d: u8,
}

impl Date {
    /// `YYYYMMDD`, as on the text AP (DF24).
    pub fn yyyymmdd(self) -> String {
        format!("{:04}{:02}{:02}", self.y, self.m, self.d)
    }

    /// `EYYYYMMDD`, as in the signing certificate's SAN (`…8.5.5.4`).
    pub fn era_yyyymmdd(self) -> Result<String, TestPkiError> {
        Ok(format!("{}{}", era_digit(self)?, self.yyyymmdd()))
    }
}

/// Era digit of a date, by the first day of each era:
/// 1 = 明治 (from 1868-10-23), 2 = 大正 (from 1912-07-30), 3 = 昭和 (from 1926-12-25),
/// 4 = 平成 (from 1989-01-08), 5 = 令和 (from 2019-05-01). Earlier dates are an error.
pub fn era_digit(date: Date) -> Result<char, TestPkiError> {
    const STARTS: [(Date, char); 5] = [
        (
            Date {
                y: 2019,
                m: 5,
                d: 1,
            },
            '5',
        ),
        (
            Date {
                y: 1989,
                m: 1,
                d: 8,
            },
            '4',
        ),
        (
            Date {
                y: 1926,
                m: 12,
                d: 25,
            },
            '3',
        ),
        (
            Date {
                y: 1912,
                m: 7,
                d: 30,
            },
            '2',
        ),
        (
            Date {
                y: 1868,
                m: 10,
                d: 23,
            },
            '1',
        ),
    ];
    STARTS
        .iter()
        .find(|(start, _)| date >= *start)
        .map(|(_, digit)| *digit)
        .ok_or(TestPkiError::BeforeMeiji(date.yyyymmdd()))
}

/// Appends the check digit to an 11-digit base, giving a 12-digit My Number.
///
/// The official rule (個人番号の検査用数字): with P_n the n-th digit counted from the right of
/// the 11 digits and Q_n = n + 1 for n ≤ 6, n − 5 for n ≥ 7, let r = Σ P_n·Q_n mod 11; the check
/// digit is 0 when r ≤ 1, else 11 − r.
pub fn my_number(base11: &str) -> Result<String, TestPkiError> {
    let digits: Vec<u32> = base11.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 11 || base11.len() != 11 {
        return Err(TestPkiError::MyNumberBase(base11.to_owned()));
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, p)| {
            let n = i as u32 + 1;
            let q = if n <= 6 { n + 1 } else { n - 5 };
            p * q
        })
        .sum();
    let r = sum % 11;
    let check = if r <= 1 { 0 } else { 11 - r };
    Ok(format!("{base11}{check}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn era_boundaries() {
        let d = |y, m, d| Date { y, m, d };
        assert_eq!(era_digit(d(1989, 1, 7)).unwrap(), '3');
        assert_eq!(era_digit(d(1989, 1, 8)).unwrap(), '4');
        assert_eq!(era_digit(d(2019, 4, 30)).unwrap(), '4');
        assert_eq!(era_digit(d(2019, 5, 1)).unwrap(), '5');
        assert_eq!(era_digit(d(1926, 12, 24)).unwrap(), '2');
        assert_eq!(era_digit(d(1912, 7, 29)).unwrap(), '1');
        assert!(era_digit(d(1868, 10, 22)).is_err());
        assert_eq!(d(1990, 1, 2).era_yyyymmdd().unwrap(), "419900102");
    }

    #[test]
    fn check_digit() {
        // Worked by hand: 12345678901 → Σ = 1·2+0·3+9·4+8·5+7·6+6·7+5·2+4·3+3·4+2·5+1·6 = 212,
        // 212 mod 11 = 3, check = 8.
        assert_eq!(my_number("12345678901").unwrap(), "123456789018");
        assert!(my_number("1234").is_err());
    }
}
