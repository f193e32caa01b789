//! ISO 8601 durations as Qlik's api-keys API uses them (`P7D`, `PT24H`). Pure.
//!
//! Calendar units have no fixed length; the emulator counts a year as 365 days and a
//! month as 30 days (Qlik does not say how it converts them).

use std::time::Duration;

/// Why a string is not an ISO 8601 duration the emulator accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an ISO 8601 duration such as P7D or PT24H")]
pub struct DurationError {
    input: String,
}

/// Parses `P[nY][nM][nW][nD][T[nH][nM][nS]]` with whole numbers (seconds may have a
/// fraction). At least one component is required.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        input: input.to_owned(),
    };
    let rest = input.strip_prefix('P').ok_or_else(error)?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return Err(error()),
        None => (rest, None),
    };
    let mut total = 0f64;
    let mut components = 0;
    for (part, units) in [
        (
            date,
            &[
                ('Y', 365.0 * 86400.0),
                ('M', 30.0 * 86400.0),
                ('W', 7.0 * 86400.0),
                ('D', 86400.0),
            ][..],
        ),
        (
            time.unwrap_or(""),
            &[('H', 3600.0), ('M', 60.0), ('S', 1.0)][..],
        ),
    ] {
        let mut unit_index = 0;
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || (c == '.' && units.len() == 3) {
                number.push(c);
                continue;
            }
            // Units must appear in order, each at most once, each after a number.
            let position = units[unit_index..]
                .iter()
                .position(|(u, _)| *u == c)
                .ok_or_else(error)?;
            unit_index += position + 1;
            let fractional_allowed = c == 'S' && units.len() == 3;
            if number.is_empty() || (number.contains('.') && !fractional_allowed) {
                return Err(error());
            }
            let value: f64 = number.parse().map_err(|_| error())?;
            total += value * units[unit_index - 1].1;
            components += 1;
            number.clear();
        }
        if !number.is_empty() {
            return Err(error());
        }
    }
    if components == 0 || !total.is_finite() || total > 1e12 {
        return Err(error());
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_qlik_documents_and_their_combinations() {
        let cases = [
            ("PT24H", 86_400),
            ("P7D", 7 * 86_400),
            ("P1W", 7 * 86_400),
            ("PT30M", 1_800),
            ("PT90S", 90),
            ("P1DT12H", 86_400 + 43_200),
            ("P1Y", 365 * 86_400),
            ("P1M", 30 * 86_400),
            ("P365D", 365 * 86_400),
            ("PT1H30M15S", 5_415),
        ];
        for (input, secs) in cases {
            assert_eq!(parse(input), Ok(Duration::from_secs(secs)), "{input}");
        }
        assert_eq!(parse("PT0.5S"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn rejects_malformed_durations() {
        for input in [
            "", "P", "PT", "24H", "P1H", "PT1D", "P1DT", "PT1M1H", "P1D1D", "PxD", "P1.5D",
            "-PT1H", "PT1H ", "P1DT2",
        ] {
            assert!(parse(input).is_err(), "{input:?} parsed");
        }
    }
}
