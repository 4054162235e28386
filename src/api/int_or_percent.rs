//! `IntOrString` fields that hold a count or a percentage (maxSurge,
//! maxUnavailable, minAvailable) and upstream's one rule for resolving them
//! against a total, shared by the workload controllers and the disruption
//! budget code.

/// An `IntOrString` as written: `3` or `"25%"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(i64),
    Str(String),
}

impl IntOrPercent {
    pub fn from_json(v: Option<&serde_json::Value>, default: &str) -> IntOrPercent {
        match v {
            Some(serde_json::Value::Number(n)) => IntOrPercent::Int(n.as_i64().unwrap_or(0)),
            Some(serde_json::Value::String(s)) => IntOrPercent::Str(s.clone()),
            _ => IntOrPercent::Str(default.to_string()),
        }
    }
}

/// `GetScaledValueFromIntOrPercent`.
pub fn scaled_value(v: &IntOrPercent, total: i64, round_up: bool) -> Result<i64, String> {
    match v {
        IntOrPercent::Int(i) => Ok(*i),
        IntOrPercent::Str(s) => {
            let p = s
                .strip_suffix('%')
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let x = p * total;
            Ok(if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            })
        }
    }
}
