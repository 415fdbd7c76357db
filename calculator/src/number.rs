//! Numbers for people: whole numbers without a fraction, others to a number
//! of significant digits (`--precision`, 2-15). JSON keeps full precision.

/// The fewest and most significant digits `--precision` accepts.
pub const PRECISION: std::ops::RangeInclusive<u8> = 2..=15;

/// `x` for human output: rounded to `precision` significant digits when
/// given, then printed in its shortest form (`0.3333`, `8`, `1.5e-7`).
pub fn human(x: f64, precision: Option<u8>) -> String {
    let x = match precision {
        Some(p) if x != 0.0 && x.is_finite() => {
            let p = usize::from(p.clamp(*PRECISION.start(), *PRECISION.end()));
            format!("{:.*e}", p - 1, x).parse::<f64>().unwrap_or(x)
        }
        _ => x,
    };
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn rounds_to_significant_digits_and_prints_the_shortest_form() {
        assert_eq!(human(1.0 / 3.0, None), "0.3333333333333333");
        assert_eq!(human(1.0 / 3.0, Some(4)), "0.3333");
        assert_eq!(human(2.0 / 3.0, Some(2)), "0.67");
        assert_eq!(human(123_456.789, Some(3)), "123000");
        assert_eq!(human(0.000_123_456, Some(3)), "0.000123");
        assert_eq!(human(8.0, Some(15)), "8");
        assert_eq!(human(-1.5, Some(2)), "-1.5");
        assert_eq!(human(0.0, Some(2)), "0");
        assert_eq!(human(std::f64::consts::PI, Some(15)), "3.14159265358979");
    }
}
