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

    /// `YYYY-MM-DD`.
    pub fn iso(self) -> String {
        format!("{:04}-{:02}-{:02}", self.y, self.m, self.d)
    }

    /// `YYMMDD` with the year counted in the Japanese era (元年 = 01), as the visual AP's
    /// 生年月日 key and the first six digits of 照合番号B want it (jpki-protocol.md §4.1, §7;
    /// myna-card 3.3.4 `src/data.rs` `verification_code_b`: 1980-02-17 → `550217`).
    pub fn era_yymmdd(self) -> Result<String, TestPkiError> {
        let start = match era_digit(self)? {
            '1' => 1868,
            '2' => 1912,
            '3' => 1926,
            '4' => 1989,
            _ => 2019,
        };
        let year = self.y - start + 1;
        if year > 99 {
            return Err(TestPkiError::Layout("era year over 99"));
        }
        Ok(format!("{year:02}{:02}{:02}", self.m, self.d))
    }

    /// The holder's birthday in year `y` (29 February falls on 28 February in other years).
    fn birthday_in(self, y: u16) -> Date {
        let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let d = if self.m == 2 && self.d == 29 && !leap {
            28
        } else {
            self.d
        };
        Date { y, m: self.m, d }
    }

    /// The `n`-th birthday strictly after `after`.
    pub fn nth_birthday_after(self, after: Date, n: u16) -> Date {
        let first = if self.birthday_in(after.y) > after {
            after.y
        } else {
            after.y + 1
        };
        self.birthday_in(first + n.saturating_sub(1))
    }

    /// Age in whole years on `on` (a birthday counts on the day itself).
    pub fn age_on(self, on: Date) -> u16 {
        let had_birthday = (on.m, on.d) >= (self.m, self.d);
        on.y.saturating_sub(self.y)
            .saturating_sub(u16::from(!had_birthday))
    }

    /// Expiry of a card issued on `issued` to a holder born on `self`: the 10th birthday after
    /// issuance for holders of 18 or more, the 5th for younger ones (the rule since 2022; the
    /// generator's choice of how to count is in PERSONAS.md).
    pub fn card_expiry(self, issued: Date) -> Date {
        let n = if self.age_on(issued) >= 18 { 10 } else { 5 };
        self.nth_birthday_after(issued, n)
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
    fn era_years_and_expiry() {
        let d = |y, m, d| Date { y, m, d };
        assert_eq!(d(1980, 2, 17).era_yymmdd().unwrap(), "550217");
        assert_eq!(d(1989, 1, 7).era_yymmdd().unwrap(), "640107");
        assert_eq!(d(1989, 1, 8).era_yymmdd().unwrap(), "010108");
        assert_eq!(d(1990, 1, 2).era_yymmdd().unwrap(), "020102");
        assert_eq!(d(2019, 5, 1).era_yymmdd().unwrap(), "010501");
        let issued = d(2025, 4, 1);
        assert_eq!(d(1990, 1, 2).card_expiry(issued), d(2035, 1, 2));
        assert_eq!(d(1988, 4, 1).card_expiry(issued), d(2035, 4, 1));
        assert_eq!(d(2015, 5, 5).card_expiry(issued), d(2029, 5, 5));
        assert_eq!(d(2000, 2, 29).card_expiry(issued), d(2035, 2, 28));
        assert_eq!(d(2007, 4, 1).age_on(issued), 18);
        assert_eq!(d(2007, 4, 2).age_on(issued), 17);
    }

    #[test]
    fn check_digit() {
        // Worked by hand: 12345678901 → Σ = 1·2+0·3+9·4+8·5+7·6+6·7+5·2+4·3+3·4+2·5+1·6 = 212,
        // 212 mod 11 = 3, check = 8.
        assert_eq!(my_number("12345678901").unwrap(), "123456789018");
        assert!(my_number("1234").is_err());
    }
}
