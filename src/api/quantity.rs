//! `resource.Quantity`: parsed and compared exactly as Kubernetes does.
//!
//! A quantity is a signed decimal times a suffix: binary (`Ki`..`Ei`),
//! decimal SI (`n`, `u`, `m`, `` ``, `k`, `M`..`E`) or a decimal exponent
//! (`e3`, `E-2`). We hold the value exactly in nano-units (`i128`), which
//! covers every value Kubernetes can represent (|v| <= 2^63-1) at the finest
//! precision it keeps; anything finer is rounded up, as Kubernetes rounds up
//! (`0.1m` reads as `1m` once asked for milli-units).

use std::fmt;

/// Nano-units per unit.
const NANO: i128 = 1_000_000_000;

/// An exact quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    nanos: i128,
}

/// Why a quantity string was rejected; the message matches Kubernetes'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError(pub String);

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

impl Quantity {
    pub const ZERO: Quantity = Quantity { nanos: 0 };

    /// A whole number of units (`3` cpus, `1024` bytes).
    pub fn from_units(v: i64) -> Self {
        Quantity {
            nanos: v as i128 * NANO,
        }
    }

    /// Milli-units (`250` → `250m`).
    pub fn from_milli(v: i64) -> Self {
        Quantity {
            nanos: v as i128 * 1_000_000,
        }
    }

    /// Parses a Kubernetes quantity string.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(QuantityError("quantities must not be empty".into()));
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let negative = match bytes[0] {
            b'-' => {
                i = 1;
                true
            }
            b'+' => {
                i = 1;
                false
            }
            _ => false,
        };
        let num_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &s[num_start..i];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(QuantityError(FORMAT_WRONG.into()));
        }
        let suffix = &s[i..];
        // (multiplier numerator, power of ten) of the suffix.
        let (mult, pow10): (i128, i32) = match suffix {
            "" => (1, 0),
            "n" => (1, -9),
            "u" => (1, -6),
            "m" => (1, -3),
            "k" => (1, 3),
            "M" => (1, 6),
            "G" => (1, 9),
            "T" => (1, 12),
            "P" => (1, 15),
            "E" => (1, 18),
            "Ki" => (1 << 10, 0),
            "Mi" => (1 << 20, 0),
            "Gi" => (1 << 30, 0),
            "Ti" => (1 << 40, 0),
            "Pi" => (1 << 50, 0),
            "Ei" => (1 << 60, 0),
            exp if exp.len() > 1 && (exp.starts_with('e') || exp.starts_with('E')) => {
                let e: i32 = exp[1..]
                    .parse()
                    .map_err(|_| QuantityError(FORMAT_WRONG.into()))?;
                (1, e)
            }
            _ => return Err(QuantityError("unable to parse quantity's suffix".into())),
        };
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        // value = digits * 10^(pow10 - frac_len) * mult, in nanos: * 10^9.
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let exp10 = pow10 - frac_part.len() as i32 + 9;
        let mut nanos: i128 = 0;
        let too_big = || QuantityError("quantity is too large".into());
        if !digits.is_empty() {
            if digits.len() > 36 {
                return Err(too_big());
            }
            let d: i128 = digits
                .parse()
                .map_err(|_| QuantityError(FORMAT_WRONG.into()))?;
            let scaled = d.checked_mul(mult).ok_or_else(too_big)?;
            nanos = if exp10 >= 0 {
                if exp10 > 36 {
                    return Err(too_big());
                }
                scaled
                    .checked_mul(10i128.pow(exp10 as u32))
                    .ok_or_else(too_big)?
            } else {
                let div = 10i128.checked_pow((-exp10) as u32);
                match div {
                    // Finer than a nano-unit: round up (away from zero), as Kubernetes does.
                    Some(div) => (scaled + div - 1) / div,
                    None => 1,
                }
            };
        }
        // Kubernetes caps magnitudes at 2^63-1 units.
        let cap = (i64::MAX as i128) * NANO;
        if nanos > cap {
            nanos = cap;
        }
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
        })
    }

    /// `Value()`: whole units, rounded up.
    pub fn value(&self) -> i64 {
        div_ceil(self.nanos, NANO) as i64
    }

    /// `MilliValue()`: milli-units, rounded up.
    pub fn milli_value(&self) -> i64 {
        div_ceil(self.nanos, 1_000_000) as i64
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    pub fn plus(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
        }
    }

    pub fn minus(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos),
        }
    }

    /// Canonical form, as Kubernetes prints a quantity it computed: milli-units
    /// when fractional, binary suffixes for exact multiples of 1024, else plain.
    pub fn canonical(&self, binary: bool) -> String {
        let n = self.nanos;
        if n % NANO != 0 {
            if n % 1_000_000 == 0 {
                return format!("{}m", n / 1_000_000);
            }
            if n % 1_000 == 0 {
                return format!("{}u", n / 1_000);
            }
            return format!("{n}n");
        }
        let v = n / NANO;
        if v == 0 {
            return "0".into();
        }
        if binary {
            for (suffix, shift) in [
                ("Ei", 60),
                ("Pi", 50),
                ("Ti", 40),
                ("Gi", 30),
                ("Mi", 20),
                ("Ki", 10),
            ] {
                if v % (1i128 << shift) == 0 {
                    return format!("{}{suffix}", v >> shift);
                }
            }
            return v.to_string();
        }
        for (suffix, p) in [
            ("E", 18),
            ("P", 15),
            ("T", 12),
            ("G", 9),
            ("M", 6),
            ("k", 3),
        ] {
            let d = 10i128.pow(p);
            if v % d == 0 {
                return format!("{}{suffix}", v / d);
            }
        }
        v.to_string()
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && a > 0 {
        q + 1
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    /// Cases from apimachinery's quantity_test.go (TestQuantityParse and
    /// friends), checked against MilliValue/Value as Kubernetes computes them.
    #[test]
    fn parses_like_kubernetes() {
        let cases: &[(&str, i64, i64)] = &[
            // (input, MilliValue, Value)
            ("0", 0, 0),
            ("1", 1000, 1),
            ("500m", 500, 1),
            ("0.5", 500, 1),
            ("1.5", 1500, 2),
            ("100m", 100, 1),
            ("0.1m", 1, 1), // rounded up to 1m
            ("1k", 1_000_000, 1000),
            ("1Ki", 1_024_000, 1024),
            ("1.5Gi", 1_610_612_736_000, 1_610_612_736),
            ("128Mi", 134_217_728_000, 134_217_728),
            ("1e3", 1_000_000, 1000),
            ("1E3", 1_000_000, 1000),
            ("1e-3", 1, 1),
            ("2M", 2_000_000_000, 2_000_000),
            (".5", 500, 1),
            ("5.", 5000, 5),
            ("+1", 1000, 1),
            ("-1", -1000, -1),
            ("10n", 1, 1),
            ("1u", 1, 1),
            ("2G", 2_000_000_000_000, 2_000_000_000),
        ];
        for (input, milli, value) in cases {
            let v = q(input);
            assert_eq!(v.milli_value(), *milli, "MilliValue of {input}");
            assert_eq!(v.value(), *value, "Value of {input}");
        }
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for bad in ["", "abc", "1.2.3", "1Kb", "1 Gi", "--1", "1ii", "."] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn arithmetic_and_canonical_form() {
        assert_eq!(q("1.5").canonical(false), "1500m");
        assert_eq!(q("1536Mi").canonical(true), "1536Mi");
        assert_eq!(q("1.5Gi").canonical(true), "1536Mi");
        assert_eq!(q("2Gi").canonical(true), "2Gi");
        assert_eq!(q("3000").canonical(false), "3k");
        assert_eq!(q("100m").plus(q("0.9")), q("1"));
        assert!(q("100m") < q("0.2"));
    }
}
