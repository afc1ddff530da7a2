//! Human-friendly durations for flags, environment variables and the config file.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration written as `500ms`, `15s`, `2m`, `1h`, `1d`, or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration (try 500ms, 15s, 2m, 1h)"))?;
        let seconds = match unit.trim() {
            "" | "s" => value,
            "ms" => value / 1000.0,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86400.0,
            other => {
                return Err(format!(
                    "unknown duration unit {other:?} (use ms, s, m, h or d)"
                ));
            }
        };
        Ok(HumanDuration(Duration::from_secs_f64(seconds)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(seconds) => Ok(HumanDuration(Duration::from_secs(seconds))),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        let parse = |text: &str| text.parse::<HumanDuration>().unwrap().0;
        assert_eq!(parse("500ms"), Duration::from_millis(500));
        assert_eq!(parse("15s"), Duration::from_secs(15));
        assert_eq!(parse("15"), Duration::from_secs(15));
        assert_eq!(parse("2m"), Duration::from_secs(120));
        assert_eq!(parse("1h"), Duration::from_secs(3600));
        assert!("fast".parse::<HumanDuration>().is_err());
        assert!("3 weeks".parse::<HumanDuration>().is_err());
    }
}
