//! The CEL environment of device selectors, as upstream's
//! `dynamic-resource-allocation/cel` declares it: one variable `device`
//! with `driver`, `attributes` (domain → name → bool, int, string or
//! semver) and `capacity` (domain → name → quantity), and Kubernetes'
//! `quantity()`/`semver()` libraries for comparing the typed values.
//!
//! Expressions are compiled once, when an object is read, and evaluated
//! per device. A missing domain or name is a runtime error, not `false`,
//! as in upstream (a selector guards with `"name" in device.attributes[d]`).

use std::collections::HashMap;
use std::sync::Arc;

use cel::extractors::This;
use cel::objects::Opaque;
use cel::{Context, ExecutionError, Program, Value};

use super::device::{AttrValue, Device};
use crate::api::quantity::Quantity;

/// `DeviceSelectorCELExpressionMaxLength`... in v1: 10 Ki characters.
pub const MAX_EXPRESSION_LENGTH: usize = 10 * 1024;
/// Deepest nesting of brackets kubesim parses (cel-go's parser stops at
/// a recursion depth of 250; this keeps the recursive parser's stack small).
const MAX_NESTING: usize = 100;
/// Comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) one
/// selector may hold. The `cel` crate has no cost budget, and nested
/// comprehensions over literal lists fit in 10 Ki characters yet run for
/// hours; upstream refuses those with its cost limit (10^6), kubesim by
/// allowing one comprehension, which a 10 Ki expression bounds.
const MAX_COMPREHENSIONS: usize = 1;
/// Operators one selector may hold: each is a level of the evaluator's
/// recursion, so a chain of thousands would exhaust a thread's stack.
const MAX_OPERATORS: usize = 256;

/// A compiled selector.
pub struct Selector {
    pub expression: String,
    program: Program,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Selector({:?})", self.expression)
    }
}

impl PartialEq for Selector {
    fn eq(&self, other: &Selector) -> bool {
        self.expression == other.expression
    }
}

/// Compiles `expression`; `Err` is the message a validation error carries.
pub fn compile(expression: &str) -> Result<Selector, String> {
    if expression.len() > MAX_EXPRESSION_LENGTH {
        return Err(format!(
            "may not be longer than {MAX_EXPRESSION_LENGTH} characters"
        ));
    }
    let mut depth = 0usize;
    for c in expression.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING {
            return Err(format!(
                "compilation failed: nested more than {MAX_NESTING} deep"
            ));
        }
    }
    check_cost(expression)?;
    let program = Program::compile(expression)
        .map_err(|e| format!("compilation failed: {}", one_line(&e.to_string())))?;
    Ok(Selector {
        expression: expression.to_string(),
        program,
    })
}

/// Bounds on the work one evaluation can do (see [`MAX_COMPREHENSIONS`]).
fn check_cost(expression: &str) -> Result<(), String> {
    let comprehensions: usize = [".all(", ".exists(", ".exists_one(", ".map(", ".filter("]
        .iter()
        .map(|m| expression.matches(m).count())
        .sum();
    if comprehensions > MAX_COMPREHENSIONS {
        return Err(format!(
            "too complex: kubesim evaluates at most {MAX_COMPREHENSIONS} comprehension (all, exists, exists_one, map, filter) per selector, as its stand-in for the CEL cost limit"
        ));
    }
    let operators = [
        "&&", "||", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "?", "<", ">", "!",
    ]
    .iter()
    .map(|op| expression.matches(op).count())
    .sum::<usize>();
    if operators > MAX_OPERATORS {
        return Err(format!(
            "too complex: more than {MAX_OPERATORS} operators, kubesim's stand-in for the CEL cost limit"
        ));
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `quantity("16Gi")` values.
#[derive(Debug, PartialEq, Eq)]
struct Qty(Quantity);

impl Opaque for Qty {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.Quantity"
    }
}

/// A semantic version (semver 2.0.0 precedence; build metadata ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semver {
    core: [u64; 3],
    pre: Vec<String>,
}

impl Semver {
    pub fn parse(text: &str) -> Result<Semver, String> {
        let bad = || format!("{text:?} is not a semantic version (MAJOR.MINOR.PATCH)");
        let text_no_build = text.split('+').next().unwrap_or_default();
        let (core, pre) = match text_no_build.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (text_no_build, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return Err(bad());
        }
        let mut nums = [0u64; 3];
        for (n, p) in nums.iter_mut().zip(&parts) {
            let leading_zero = p.len() > 1 && p.starts_with('0');
            if p.is_empty() || leading_zero || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            *n = p.parse().map_err(|_| bad())?;
        }
        let pre: Vec<String> = pre.map_or(Vec::new(), |p| p.split('.').map(String::from).collect());
        if pre.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        Ok(Semver { core: nums, pre })
    }

    fn precedence(&self, other: &Semver) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        self.core
            .cmp(&other.core)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let o = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.cmp(b),
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

impl Opaque for Semver {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.Semver"
    }
}

fn quantity(s: Arc<String>) -> Result<Value, ExecutionError> {
    Quantity::parse(&s)
        .map(|q| Value::Opaque(Arc::new(Qty(q))))
        .map_err(|e| ExecutionError::function_error("quantity", e.to_string()))
}

fn semver(s: Arc<String>) -> Result<Value, ExecutionError> {
    Semver::parse(&s)
        .map(|v| Value::Opaque(Arc::new(v)))
        .map_err(|e| ExecutionError::function_error("semver", e))
}

/// `a.compareTo(b)` for two quantities or two versions: -1, 0 or 1.
fn compare(
    name: &str,
    a: &Arc<dyn Opaque>,
    b: &Arc<dyn Opaque>,
) -> Result<std::cmp::Ordering, ExecutionError> {
    if let (Some(x), Some(y)) = (a.downcast_ref::<Qty>(), b.downcast_ref::<Qty>()) {
        return Ok(x.0.cmp(&y.0));
    }
    if let (Some(x), Some(y)) = (a.downcast_ref::<Semver>(), b.downcast_ref::<Semver>()) {
        return Ok(x.precedence(y));
    }
    Err(ExecutionError::function_error(
        name,
        format!(
            "no such overload: {}.{name}({})",
            a.runtime_type_name(),
            b.runtime_type_name()
        ),
    ))
}

fn compare_to(This(a): This<Arc<dyn Opaque>>, b: Arc<dyn Opaque>) -> Result<i64, ExecutionError> {
    compare("compareTo", &a, &b).map(|o| o as i64)
}

fn is_greater_than(
    This(a): This<Arc<dyn Opaque>>,
    b: Arc<dyn Opaque>,
) -> Result<bool, ExecutionError> {
    compare("isGreaterThan", &a, &b).map(|o| o.is_gt())
}

fn is_less_than(
    This(a): This<Arc<dyn Opaque>>,
    b: Arc<dyn Opaque>,
) -> Result<bool, ExecutionError> {
    compare("isLessThan", &a, &b).map(|o| o.is_lt())
}

/// `q.asInteger()`: the quantity in whole units, an error when fractional.
fn as_integer(This(a): This<Arc<dyn Opaque>>) -> Result<i64, ExecutionError> {
    let q = a
        .downcast_ref::<Qty>()
        .ok_or_else(|| ExecutionError::function_error("asInteger", "not a quantity"))?;
    let units = Quantity::from_units(q.0.value());
    if units != q.0 {
        return Err(ExecutionError::function_error(
            "asInteger",
            "cannot convert value to integer",
        ));
    }
    Ok(q.0.value())
}

/// The functions every evaluation sees: built once per allocation pass
/// (registering them costs ~0.1 ms), scoped per device.
pub struct Env {
    root: Context<'static, 'static>,
}

impl Default for Env {
    fn default() -> Self {
        let mut root = Context::default();
        let declared = [
            root.add_function("quantity", quantity),
            root.add_function("semver", semver),
            root.add_function("compareTo", compare_to),
            root.add_function("isGreaterThan", is_greater_than),
            root.add_function("isLessThan", is_less_than),
            root.add_function("asInteger", as_integer),
        ];
        for d in declared {
            d.expect("kubesim's CEL functions do not clash with the standard library");
        }
        Env { root }
    }
}

fn attr_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Int(i) => Value::Int(*i),
        AttrValue::Str(s) => Value::from(s.as_str()),
        AttrValue::Version(s) => match Semver::parse(s) {
            Ok(v) => Value::Opaque(Arc::new(v)),
            // Validated when the slice was read.
            Err(_) => Value::Null,
        },
    }
}

/// `domain/name → v` regrouped as `domain → name → v`.
fn by_domain<T>(items: &std::collections::BTreeMap<String, T>, f: impl Fn(&T) -> Value) -> Value {
    let mut out: HashMap<String, HashMap<String, Value>> = HashMap::new();
    for (k, v) in items {
        let (domain, name) = k.rsplit_once('/').unwrap_or(("", k));
        out.entry(domain.to_string())
            .or_default()
            .insert(name.to_string(), f(v));
    }
    Value::from(
        out.into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect::<HashMap<String, Value>>(),
    )
}

impl Env {
    /// Whether `selector` selects `device` of `driver`; `Err` on a runtime
    /// error or a result that is not a bool.
    pub fn matches(
        &self,
        selector: &Selector,
        driver: &str,
        device: &Device,
    ) -> Result<bool, String> {
        let mut ctx = self.root.new_inner_scope();
        let mut dev: HashMap<String, Value> = HashMap::new();
        dev.insert("driver".into(), Value::from(driver));
        dev.insert(
            "attributes".into(),
            by_domain(&device.attributes, attr_value),
        );
        let capacity = by_domain(&device.capacity, |q| Value::Opaque(Arc::new(Qty(*q))));
        dev.insert("capacity".into(), capacity);
        ctx.add_variable_from_value("device", dev);
        match selector.program.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "CEL result of type {:?} should have been a bool",
                other.type_of()
            )),
            Err(e) => Err(format!("CEL runtime error: {}", one_line(&e.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn gpu() -> Device {
        let mut attributes = BTreeMap::new();
        attributes.insert("gpu.example.com/model".into(), AttrValue::Str("T4".into()));
        attributes.insert("gpu.example.com/index".into(), AttrValue::Int(3));
        attributes.insert(
            "gpu.example.com/driverVersion".into(),
            AttrValue::Version("1.2.3".into()),
        );
        let mut capacity = BTreeMap::new();
        capacity.insert(
            "gpu.example.com/memory".into(),
            Quantity::parse("16Gi").unwrap(),
        );
        Device {
            name: "gpu-3".into(),
            attributes,
            capacity,
        }
    }

    fn eval(expr: &str) -> Result<bool, String> {
        Env::default().matches(&compile(expr)?, "gpu.example.com", &gpu())
    }

    #[test]
    fn selectors_read_driver_attributes_and_capacity() {
        assert_eq!(eval(r#"device.driver == "gpu.example.com""#), Ok(true));
        assert_eq!(
            eval(r#"device.attributes["gpu.example.com"].model == "T4""#),
            Ok(true)
        );
        assert_eq!(
            eval(r#"device.attributes["gpu.example.com"].index > 2"#),
            Ok(true)
        );
        // 16Gi = 17179869184 bytes >= 16G = 16000000000 bytes.
        let q = r#"device.capacity["gpu.example.com"].memory.compareTo(quantity("16G")) > 0"#;
        assert_eq!(eval(q), Ok(true));
        let q = r#"device.capacity["gpu.example.com"].memory.isLessThan(quantity("32Gi"))"#;
        assert_eq!(eval(q), Ok(true));
        let v = r#"device.attributes["gpu.example.com"].driverVersion.isGreaterThan(semver("1.2.3-rc.1"))"#;
        assert_eq!(eval(v), Ok(true));
        assert_eq!(
            eval(r#"device.capacity["gpu.example.com"].memory.asInteger() == 17179869184"#),
            Ok(true)
        );
    }

    #[test]
    fn a_missing_attribute_is_a_runtime_error_unless_guarded() {
        assert!(eval(r#"device.attributes["other.io"].model == "T4""#)
            .unwrap_err()
            .starts_with("CEL runtime error"));
        let guarded =
            r#""other.io" in device.attributes && device.attributes["other.io"].model == "T4""#;
        assert_eq!(eval(guarded), Ok(false));
    }

    #[test]
    fn bad_expressions_are_refused_at_compile_time() {
        assert!(compile("device.driver ==").is_err());
        assert!(compile(&"(".repeat(200)).unwrap_err().contains("nested"));
        assert!(compile(&"a".repeat(MAX_EXPRESSION_LENGTH + 1)).is_err());
        assert!(eval("1 + 1")
            .unwrap_err()
            .contains("should have been a bool"));
        // Nested comprehensions would run for hours: refused as too complex.
        let nested = "[1,2,3].all(a, [1,2,3].all(b, a + b > 0))";
        assert!(compile(nested).unwrap_err().starts_with("too complex"));
        assert_eq!(eval("[1, 2, 3].exists(x, x == 2)"), Ok(true));
        let chain = vec!["1"; 300].join(" + ") + " > 0";
        assert!(compile(&chain).unwrap_err().starts_with("too complex"));
    }

    #[test]
    fn semver_precedence_follows_the_spec() {
        let v = |s| Semver::parse(s).unwrap();
        // 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta < 1.0.0-rc.1 < 1.0.0.
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-beta",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for w in order.windows(2) {
            assert!(v(w[0]).precedence(&v(w[1])).is_lt(), "{} < {}", w[0], w[1]);
        }
        assert!(Semver::parse("01.0.0").is_err());
        assert!(Semver::parse("1.0").is_err());
    }
}
