//! Thresholds: the bar each metric of a case must clear.
//!
//! Written in case and suite files as `"> 0.3"`, `">= 0.7"`, a bare number (meaning `>=`), or `"off"`.
//! Suite values replace the built-in defaults key by key; case values replace the suite's. Every threshold
//! of a case is checked and reported, not only the first that fails.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::metrics::{Metric, Metrics};

/// How a value is compared with its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
}

/// One bound: `value op bound` must hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub op: Op,
    pub bound: f64,
}

impl Threshold {
    pub fn passes(&self, value: f64) -> bool {
        match self.op {
            Op::Gt => value > self.bound,
            Op::Ge => value >= self.bound,
        }
    }

    /// Parses `"> 0.3"`, `">= 0.7"`, `"0.7"`; `Ok(None)` for `"off"`.
    pub fn parse(text: &str) -> std::result::Result<Option<Threshold>, String> {
        let t = text.trim();
        if t == "off" {
            return Ok(None);
        }
        let (op, rest) = if let Some(r) = t.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = t.strip_prefix('>') {
            (Op::Gt, r)
        } else {
            (Op::Ge, t)
        };
        let bound: f64 = rest.trim().parse().map_err(|_| {
            format!("cannot read threshold '{text}' (write \"> 0.3\", \">= 0.7\", a number, or \"off\")")
        })?;
        Threshold::new(op, bound).map(Some)
    }

    fn new(op: Op, bound: f64) -> std::result::Result<Threshold, String> {
        if !(0.0..=1.0).contains(&bound) {
            return Err(format!("threshold {bound} is outside [0, 1]"));
        }
        Ok(Threshold { op, bound })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Gt => ">",
            Op::Ge => ">=",
        };
        write!(f, "{op} {}", self.bound)
    }
}

/// A threshold as written in a file, before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawThreshold {
    Number(f64),
    Text(String),
}

/// The `[thresholds]` table of a suite or case file.
pub type RawThresholds = BTreeMap<Spanned<String>, Spanned<RawThreshold>>;

/// The thresholds in force for a case, by metric. A metric absent from the map is not checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thresholds(pub BTreeMap<Metric, Threshold>);

/// The outcome of one threshold check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub metric: Metric,
    pub value: f64,
    pub threshold: Threshold,
    pub passed: bool,
}

impl Thresholds {
    /// The users' own bar: mrr > 0.3, precision >= 0.7, accuracy >= 0.8, recall >= 0.6.
    pub fn seed_defaults() -> Thresholds {
        let t = |op, bound| Threshold { op, bound };
        Thresholds(BTreeMap::from([
            (Metric::Mrr, t(Op::Gt, 0.3)),
            (Metric::Precision, t(Op::Ge, 0.7)),
            (Metric::Accuracy, t(Op::Ge, 0.8)),
            (Metric::Recall, t(Op::Ge, 0.6)),
        ]))
    }

    /// These thresholds with `raw` (read from `path`, whose text is `text`) applied on top.
    pub fn overridden(&self, raw: &RawThresholds, path: &Path, text: &str) -> Result<Thresholds> {
        let mut out = self.clone();
        for (key, value) in raw {
            let at = |span: std::ops::Range<usize>, msg: String| Error::at_offset(path, text, span.start, msg);
            let metric = Metric::from_key(key.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = Metric::ALL.iter().filter(|m| **m != Metric::Red).map(|m| m.key()).collect();
                at(key.span(), format!("unknown metric '{}' (known: {})", key.get_ref(), known.join(", ")))
            })?;
            if metric == Metric::Red {
                return Err(at(key.span(), "'red' is a count of red items, not a score in [0, 1]: it takes no threshold".into()));
            }
            let parsed = match value.get_ref() {
                RawThreshold::Number(n) => Threshold::new(Op::Ge, *n).map(Some),
                RawThreshold::Text(t) => Threshold::parse(t),
            }
            .map_err(|msg| at(value.span(), msg))?;
            match parsed {
                Some(t) => out.0.insert(metric, t),
                None => out.0.remove(&metric),
            };
        }
        Ok(out)
    }

    /// Checks every threshold against `metrics`, in metric order.
    pub fn check(&self, metrics: &Metrics) -> Vec<Check> {
        self.0
            .iter()
            .map(|(&metric, &threshold)| {
                let value = metrics.get(metric);
                Check { metric, value, threshold, passed: threshold.passes(value) }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operators_and_bounds() {
        let cases: &[(&str, Result<Option<Threshold>, &str>)] = &[
            ("> 0.3", Ok(Some(Threshold { op: Op::Gt, bound: 0.3 }))),
            (">=0.7", Ok(Some(Threshold { op: Op::Ge, bound: 0.7 }))),
            ("0.6", Ok(Some(Threshold { op: Op::Ge, bound: 0.6 }))),
            ("off", Ok(None)),
            ("> 1.5", Err("threshold 1.5 is outside [0, 1]")),
            ("< 0.3", Err("cannot read threshold '< 0.3' (write \"> 0.3\", \">= 0.7\", a number, or \"off\")")),
        ];
        for (text, want) in cases {
            assert_eq!(Threshold::parse(text), want.clone().map_err(str::to_string), "{text}");
        }
    }

    #[test]
    fn strict_and_inclusive_bounds() {
        let gt = Threshold { op: Op::Gt, bound: 0.3 };
        let ge = Threshold { op: Op::Ge, bound: 0.3 };
        assert!(!gt.passes(0.3));
        assert!(ge.passes(0.3));
        assert!(gt.passes(0.31));
        assert!(!ge.passes(0.29));
    }

    #[test]
    fn overrides_replace_key_by_key() {
        #[derive(Deserialize)]
        struct F {
            thresholds: RawThresholds,
        }
        let text = "[thresholds]\nmrr = 0.5\nrecall = \"off\"\nndcg = \"> 0.2\"\n";
        let f: F = toml::from_str(text).unwrap();
        let t = Thresholds::seed_defaults().overridden(&f.thresholds, Path::new("c.toml"), text).unwrap();
        assert_eq!(t.0[&Metric::Mrr], Threshold { op: Op::Ge, bound: 0.5 });
        assert_eq!(t.0[&Metric::Ndcg], Threshold { op: Op::Gt, bound: 0.2 });
        assert_eq!(t.0[&Metric::Precision], Threshold { op: Op::Ge, bound: 0.7 });
        assert!(!t.0.contains_key(&Metric::Recall));

        let text = "[thresholds]\nprecision = 1.2\n";
        let f: F = toml::from_str(text).unwrap();
        let e = Thresholds::seed_defaults().overridden(&f.thresholds, Path::new("c.toml"), text).unwrap_err();
        assert_eq!(e.to_string(), "c.toml:2:13: threshold 1.2 is outside [0, 1]");
    }
}
