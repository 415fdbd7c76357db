//! The operations: finite numbers in, a finite number out, or a clear error.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Add,
    Subtract,
    Multiply,
    Divide,
    Power,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Log,
}

impl Operation {
    pub const ALL: [Operation; 10] = [
        Operation::Add,
        Operation::Subtract,
        Operation::Multiply,
        Operation::Divide,
        Operation::Power,
        Operation::Sqrt,
        Operation::Sin,
        Operation::Cos,
        Operation::Tan,
        Operation::Log,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Add => "add",
            Operation::Subtract => "subtract",
            Operation::Multiply => "multiply",
            Operation::Divide => "divide",
            Operation::Power => "power",
            Operation::Sqrt => "sqrt",
            Operation::Sin => "sin",
            Operation::Cos => "cos",
            Operation::Tan => "tan",
            Operation::Log => "log",
        }
    }

    pub fn parse(name: &str) -> Result<Operation, CalcError> {
        Operation::ALL
            .into_iter()
            .find(|op| op.name() == name)
            .ok_or_else(|| CalcError::UnknownOperation(name.chars().take(64).collect()))
    }

    /// How many operands the operation takes.
    pub fn arity(self) -> usize {
        match self {
            Operation::Add
            | Operation::Subtract
            | Operation::Multiply
            | Operation::Divide
            | Operation::Power => 2,
            Operation::Sqrt | Operation::Sin | Operation::Cos | Operation::Tan | Operation::Log => {
                1
            }
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CalcError {
    UnknownOperation(String),
    WrongOperandCount {
        operation: Operation,
        expected: usize,
        got: usize,
    },
    NotFinite {
        index: usize,
    },
    DivisionByZero,
    NegativeSqrt,
    LogOfNonPositive,
    /// The result is not a finite number (overflow to infinity, or NaN).
    NonFiniteResult(Operation),
}

impl fmt::Display for CalcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalcError::UnknownOperation(name) => write!(
                f,
                "unknown operation \"{name}\"; valid: add, subtract, multiply, divide, power, sqrt, sin, cos, tan, log"
            ),
            CalcError::WrongOperandCount {
                operation,
                expected,
                got,
            } => write!(
                f,
                "{operation} takes {expected} operand{}, got {got}",
                if *expected == 1 { "" } else { "s" }
            ),
            CalcError::NotFinite { index } => {
                write!(f, "operand {} is not a finite number", index + 1)
            }
            CalcError::DivisionByZero => f.write_str("division by zero"),
            CalcError::NegativeSqrt => f.write_str("square root of a negative number"),
            CalcError::LogOfNonPositive => {
                f.write_str("logarithm of a number that is not positive")
            }
            CalcError::NonFiniteResult(op) => {
                write!(f, "the result of {op} is not a finite number (overflow)")
            }
        }
    }
}

impl std::error::Error for CalcError {}

/// Computes `operation` over `operands`. `log` is the natural logarithm;
/// trigonometric functions take radians.
pub fn compute(operation: Operation, operands: &[f64]) -> Result<f64, CalcError> {
    let expected = operation.arity();
    if operands.len() != expected {
        return Err(CalcError::WrongOperandCount {
            operation,
            expected,
            got: operands.len(),
        });
    }
    if let Some(index) = operands.iter().position(|x| !x.is_finite()) {
        return Err(CalcError::NotFinite { index });
    }
    let a = operands[0];
    let b = operands.get(1).copied().unwrap_or(0.0);
    let result = match operation {
        Operation::Add => a + b,
        Operation::Subtract => a - b,
        Operation::Multiply => a * b,
        Operation::Divide if b == 0.0 => return Err(CalcError::DivisionByZero),
        Operation::Divide => a / b,
        Operation::Power => a.powf(b),
        Operation::Sqrt if a < 0.0 => return Err(CalcError::NegativeSqrt),
        Operation::Sqrt => a.sqrt(),
        Operation::Sin => a.sin(),
        Operation::Cos => a.cos(),
        Operation::Tan => a.tan(),
        Operation::Log if a <= 0.0 => return Err(CalcError::LogOfNonPositive),
        Operation::Log => a.ln(),
    };
    if result.is_finite() {
        // -0.0 prints as "-0" in JSON; a calculator answers 0.
        Ok(if result == 0.0 { 0.0 } else { result })
    } else {
        Err(CalcError::NonFiniteResult(operation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(op: Operation, operands: &[f64]) -> f64 {
        compute(op, operands).unwrap_or_else(|e| panic!("{op} {operands:?}: {e}"))
    }

    #[test]
    fn every_operation_answers() {
        assert_eq!(ok(Operation::Add, &[5.0, 3.0]), 8.0);
        assert_eq!(ok(Operation::Subtract, &[5.0, 3.0]), 2.0);
        assert_eq!(ok(Operation::Multiply, &[5.0, 3.0]), 15.0);
        assert_eq!(ok(Operation::Divide, &[6.0, 3.0]), 2.0);
        assert_eq!(ok(Operation::Power, &[2.0, 10.0]), 1024.0);
        assert_eq!(ok(Operation::Sqrt, &[16.0]), 4.0);
        assert!((ok(Operation::Sin, &[std::f64::consts::FRAC_PI_2]) - 1.0).abs() < 1e-12);
        assert!((ok(Operation::Cos, &[0.0]) - 1.0).abs() < 1e-12);
        assert!((ok(Operation::Tan, &[std::f64::consts::FRAC_PI_4]) - 1.0).abs() < 1e-12);
        assert!((ok(Operation::Log, &[std::f64::consts::E]) - 1.0).abs() < 1e-12);
        assert_eq!(ok(Operation::Multiply, &[-0.0, 5.0]).to_string(), "0");
    }

    #[test]
    fn every_error_is_clear() {
        assert_eq!(
            compute(Operation::Divide, &[1.0, 0.0]),
            Err(CalcError::DivisionByZero)
        );
        assert_eq!(
            compute(Operation::Divide, &[0.0, -0.0]),
            Err(CalcError::DivisionByZero)
        );
        assert_eq!(
            compute(Operation::Sqrt, &[-1.0]),
            Err(CalcError::NegativeSqrt)
        );
        assert_eq!(
            compute(Operation::Log, &[0.0]),
            Err(CalcError::LogOfNonPositive)
        );
        assert_eq!(
            compute(Operation::Log, &[-3.0]),
            Err(CalcError::LogOfNonPositive)
        );
        assert_eq!(
            compute(Operation::Multiply, &[1e308, 10.0]),
            Err(CalcError::NonFiniteResult(Operation::Multiply))
        );
        assert_eq!(
            compute(Operation::Power, &[10.0, 400.0]),
            Err(CalcError::NonFiniteResult(Operation::Power))
        );
        assert_eq!(
            compute(Operation::Power, &[-8.0, 0.5]),
            Err(CalcError::NonFiniteResult(Operation::Power))
        );
        assert_eq!(
            compute(Operation::Add, &[f64::NAN, 1.0]),
            Err(CalcError::NotFinite { index: 0 })
        );
        assert_eq!(
            compute(Operation::Add, &[1.0, f64::INFINITY]),
            Err(CalcError::NotFinite { index: 1 })
        );
        assert_eq!(
            compute(Operation::Add, &[1.0]),
            Err(CalcError::WrongOperandCount {
                operation: Operation::Add,
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            compute(Operation::Sqrt, &[1.0, 2.0]),
            Err(CalcError::WrongOperandCount {
                operation: Operation::Sqrt,
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            compute(Operation::Sqrt, &[1.0, 2.0])
                .unwrap_err()
                .to_string(),
            "sqrt takes 1 operand, got 2"
        );
        assert_eq!(
            Operation::parse("modulo")
                .unwrap_err()
                .to_string()
                .split(';')
                .next(),
            Some("unknown operation \"modulo\"")
        );
        assert_eq!(
            Operation::parse(&"x".repeat(1000)).unwrap_err(),
            CalcError::UnknownOperation("x".repeat(64))
        );
    }

    #[test]
    fn names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.name()), Ok(op));
        }
    }
}
