//! Numbers as Salla sends them and as SALESmanago takes them.
//!
//! Salla's prices and quantities come from its server untyped: a number, a numeric string such as
//! `"250.50"`, sometimes with Arabic-Indic digits. SALESmanago takes a `value` of at most 19
//! integer digits and 2 decimals. This module parses leniently and writes amounts with at most
//! two decimals, with integer arithmetic only: Rust's general float parsing and formatting
//! machinery would add kilobytes to the wasm every shopper downloads.

/// Largest magnitude we accept as an amount. Beyond 2^53 an `f64` no longer holds whole cents, so
/// a bigger "price" is a data error, not a price; it is treated as missing.
const MAX_AMOUNT: f64 = 9_007_199_254_740_992.0 / 100.0;

/// Parses a decimal number written as text: optional sign, digits (ASCII, Arabic-Indic `٠-٩` or
/// Eastern Arabic-Indic `۰-۹`), an optional fraction after `.` or the Arabic decimal separator `٫`.
/// Surrounding white space is ignored. Anything else (exponents, thousands separators, currency
/// signs, empty text) gives `None`: guessing would be worse than leaving the field out.
pub fn parse(text: &str) -> Option<f64> {
    let text = text.trim();
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let mut mantissa: u64 = 0;
    let mut significant = 0u32; // digits held in `mantissa`, leading zeros excluded
    let mut exponent: i32 = 0; // value = mantissa * 10^exponent
    let mut digits = 0u32;
    let mut in_fraction = false;
    for c in body.chars() {
        if c == '.' || c == '\u{066B}' {
            if in_fraction {
                return None;
            }
            in_fraction = true;
            continue;
        }
        let d = digit(c)?;
        digits += 1;
        if significant < 19 {
            mantissa = mantissa * 10 + u64::from(d);
            if mantissa > 0 {
                significant += 1;
            }
            if in_fraction {
                exponent -= 1;
            }
        } else if !in_fraction {
            // Past 19 significant digits the rest only scales the integer part.
            exponent += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    let magnitude = mantissa as f64;
    // Both operands are exact for the prices we meet (mantissa < 2^53, 10^k exact up to k = 22),
    // so IEEE division or multiplication gives the correctly rounded result.
    let value = if exponent < 0 {
        magnitude / pow10(-exponent)
    } else {
        magnitude * pow10(exponent)
    };
    Some(if negative { -value } else { value })
}

pub(crate) fn digit(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(c as u32 - '0' as u32),
        '\u{0660}'..='\u{0669}' => Some(c as u32 - 0x0660),
        '\u{06F0}'..='\u{06F9}' => Some(c as u32 - 0x06F0),
        _ => None,
    }
}

fn pow10(k: i32) -> f64 {
    let mut p = 1.0;
    for _ in 0..k {
        p *= 10.0;
    }
    p
}

/// Rounds an amount to cents, the precision SALESmanago keeps. `None` for NaN, infinities and
/// magnitudes an `f64` cannot hold to the cent.
pub fn to_cents(x: f64) -> Option<i64> {
    if !x.is_finite() || x.abs() > MAX_AMOUNT {
        return None;
    }
    let cents = (x * 100.0).round();
    Some(cents as i64)
}

/// An amount rounded to two decimals, or `None` where [`to_cents`] refuses it.
pub fn round2(x: f64) -> Option<f64> {
    to_cents(x).map(|c| c as f64 / 100.0)
}

/// Writes an amount with at most two decimals and no trailing zeros, as JavaScript would print
/// the rounded number: `250.5`, `0`, `-3.25`, `1200`. Non-finite input writes nothing.
pub fn format(x: f64) -> String {
    let mut out = String::new();
    if let Some(amount) = round2(x) {
        // Rounded to cents, the amount has at most two decimals, which push_json writes exactly.
        push_json(amount, &mut out);
    }
    out
}

/// 2^63: every whole number below it prints exactly through `u64`.
const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;

/// Appends `x` as JSON: exact for every number the tracker writes — whole numbers (times, ids,
/// counts) and decimals of up to six places (prices in any currency, quantities) — in the
/// shortest form, as `JSON.stringify` prints them; anything finer is rounded to six places, and
/// what is not finite, or too large for that, is `null`. Written with integer arithmetic: Rust's
/// own float printing would be ~10 KB of the wasm for digits the tracker never has.
pub fn push_json(x: f64, out: &mut String) {
    if !x.is_finite() || x.abs() >= TWO_TO_63 {
        out.push_str("null");
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    let x = x.abs();
    // The fewest decimals that give `x` back; six when none do.
    let mut places: i32 = 0;
    let mut scaled = x.round();
    while places < 6 && scaled / pow10(places) != x {
        places += 1;
        scaled = (x * pow10(places)).round();
    }
    if places > 0 && scaled >= TWO_TO_63 {
        // Only for huge numbers with fractions, which nothing here produces.
        places = 0;
        scaled = x.round();
    }
    let unit = pow10(places) as u64;
    let scaled = scaled as u64;
    push_uint(scaled / unit, out);
    // The fraction's `places` digits, leading zeros kept; trailing ones only come from the
    // six-place rounding. On the stack: this runs for every price and quantity of a cart.
    let mut frac = scaled % unit;
    if frac == 0 {
        return;
    }
    let mut digits = [b'0'; 6];
    for d in digits[..places as usize].iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let end = digits[..places as usize]
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(0, |at| at + 1);
    out.push('.');
    for &d in &digits[..end] {
        out.push(char::from(d));
    }
}

/// Appends the decimal digits of `n`.
pub fn push_uint(mut n: u64, out: &mut String) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Digit by digit: `str::from_utf8` over the buffer would bring UTF-8 validation (~0.7 KB)
    // into the wasm for text that is ASCII by construction.
    for &digit in &buf[i..] {
        out.push(char::from(digit));
    }
}

/// The decimal digits of `n`, for messages (which the wasm builds without `format!`).
pub fn uint(n: u64) -> String {
    let mut s = String::new();
    push_uint(n, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(x: f64) -> String {
        let mut s = String::new();
        push_json(x, &mut s);
        s
    }

    #[test]
    fn json_numbers_print_as_javascript_prints_them() {
        for (x, text) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (250.5, "250.5"),
            (-3.25, "-3.25"),
            (0.1, "0.1"),
            (1.005, "1.005"),
            (12.345678, "12.345678"),
            (0.000001, "0.000001"),
            (1_763_829_999_000.0, "1763829999000"),
            (1e17, "100000000000000000"),
            (0.1 + 0.2, "0.3"),
            (1.000_000_000_1, "1"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (1e300, "null"),
        ] {
            assert_eq!(json(x), text, "{x:?}");
        }
    }

    #[test]
    fn json_numbers_are_exact_to_six_places() {
        // Every decimal of up to six places, across magnitudes, prints as Rust's shortest
        // round-trip form (which is JavaScript's below 1e21) and reads back as the same number.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let places = (seed % 7) as i32;
            let digits = (seed >> 8) % 10u64.pow(1 + (seed >> 3) as u32 % 12);
            let x = digits as f64 / pow10(places) * if seed & 1 == 0 { 1.0 } else { -1.0 };
            let x = if x == 0.0 { 0.0 } else { x };
            assert_eq!(json(x), format!("{x}"), "{digits} / 10^{places}");
            assert_eq!(json(x).parse::<f64>(), Ok(x));
        }
    }

    #[test]
    fn parses_what_salla_sends() {
        assert_eq!(parse("250.50"), Some(250.5));
        assert_eq!(parse(" 99 "), Some(99.0));
        assert_eq!(parse("-3.25"), Some(-3.25));
        assert_eq!(parse("+7"), Some(7.0));
        assert_eq!(parse(".5"), Some(0.5));
        assert_eq!(parse("5."), Some(5.0));
        assert_eq!(parse("0.1"), Some(0.1));
        assert_eq!(
            parse("٢٥٠٫٥"),
            Some(250.5),
            "Arabic-Indic digits and decimal separator"
        );
        assert_eq!(parse("۱۲۳"), Some(123.0), "Eastern Arabic-Indic digits");
        assert_eq!(parse("00012.3400"), Some(12.34));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for bad in [
            "", " ", "-", ".", "1,234.5", "1e3", "250 SAR", "abc", "1.2.3", "NaN", "Infinity",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_long_numbers_approximately_without_overflow() {
        let x = parse("123456789012345678901234567890").unwrap();
        assert!((x / 1.234_567_890_123_456_8e29 - 1.0).abs() < 1e-12);
        assert_eq!(
            parse("0.12345678901234567890123"),
            Some(0.123_456_789_012_345_68)
        );
    }

    #[test]
    fn formats_amounts_like_javascript_prints_rounded_numbers() {
        assert_eq!(format(250.5), "250.5");
        assert_eq!(format(250.0), "250");
        assert_eq!(format(0.0), "0");
        assert_eq!(format(-3.25), "-3.25");
        assert_eq!(format(0.05), "0.05");
        assert_eq!(
            format(1.005),
            "1",
            "1.005 is 1.00499… in binary, as in JavaScript"
        );
        assert_eq!(format(0.1 + 0.2), "0.3");
        assert_eq!(format(1_234_567.891), "1234567.89");
        assert_eq!(format(f64::NAN), "");
        assert_eq!(format(f64::INFINITY), "");
        assert_eq!(format(1e300), "");
    }

    #[test]
    fn rounds_to_cents() {
        assert_eq!(round2(501.004), Some(501.0));
        assert_eq!(
            round2(2.675),
            Some(2.68),
            "2.675 * 100 is 267.50000000000003"
        );
        assert_eq!(
            round2(0.125),
            Some(0.13),
            "exact halves round away from zero"
        );
        assert_eq!(round2(f64::NAN), None);
        assert_eq!(round2(-0.004), Some(-0.0));
    }

    #[test]
    fn writes_integers() {
        let mut s = String::new();
        push_uint(0, &mut s);
        s.push(' ');
        push_uint(u64::MAX, &mut s);
        assert_eq!(s, "0 18446744073709551615");
    }
}
