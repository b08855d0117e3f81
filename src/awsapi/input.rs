//! Reading a request body's members with AWS's validation messages: a
//! missing required member, a wrong type or a value out of range answers a
//! `ValidationException` that names the member, never a crash.

use serde_json::{Map, Value};

use super::AwsError;

/// A request body (an object) and the path of it that is being read.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    map: Option<&'a Map<String, Value>>,
    path: &'a str,
}

fn constraint(path: &str, member: &str, value: &Value, what: &str) -> AwsError {
    let at = if path.is_empty() {
        member.to_owned()
    } else {
        format!("{path}.{member}")
    };
    let shown = match value {
        Value::Null => "null".to_owned(),
        Value::String(s) if s.len() > 60 => format!("'{}…'", &s[..s.floor_char_boundary(60)]),
        Value::String(s) => format!("'{s}'"),
        Value::Object(_) => "an object".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        v => v.to_string(),
    };
    AwsError::validation(format!(
        "1 validation error detected: Value {shown} at '{at}' failed to satisfy constraint: {what}"
    ))
}

impl<'a> Input<'a> {
    /// The top of a request body: must be a JSON object (empty is `{}`).
    pub fn root(body: &'a Value) -> Result<Input<'a>, AwsError> {
        match body {
            Value::Object(m) => Ok(Input {
                map: Some(m),
                path: "",
            }),
            Value::Null => Ok(Input {
                map: None,
                path: "",
            }),
            _ => Err(AwsError::validation(
                "1 validation error detected: the request body must be a JSON object",
            )),
        }
    }

    fn raw(&self, member: &str) -> Option<&'a Value> {
        self.map
            .and_then(|m| m.get(member))
            .filter(|v| !v.is_null())
    }

    pub fn has(&self, member: &str) -> bool {
        self.raw(member).is_some()
    }

    fn err(&self, member: &str, value: &Value, what: &str) -> AwsError {
        constraint(self.path, member, value, what)
    }

    pub fn str_opt(&self, member: &str) -> Result<Option<&'a str>, AwsError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(member, v, "Member must be a string")),
        }
    }

    pub fn str_req(&self, member: &str) -> Result<&'a str, AwsError> {
        self.str_opt(member)?
            .ok_or_else(|| self.err(member, &Value::Null, "Member must not be null"))
    }

    /// A required string of `min..=max` characters.
    pub fn str_len(&self, member: &str, min: usize, max: usize) -> Result<&'a str, AwsError> {
        let s = self.str_req(member)?;
        self.check_len(member, s, min, max)?;
        Ok(s)
    }

    pub fn check_len(&self, member: &str, s: &str, min: usize, max: usize) -> Result<(), AwsError> {
        let n = s.chars().count();
        if n < min {
            return Err(self.err(
                member,
                &Value::String(s.into()),
                &format!("Member must have length greater than or equal to {min}"),
            ));
        }
        if n > max {
            return Err(self.err(
                member,
                &Value::String(s.into()),
                &format!("Member must have length less than or equal to {max}"),
            ));
        }
        Ok(())
    }

    /// One of `allowed`.
    pub fn enum_opt(&self, member: &str, allowed: &[&str]) -> Result<Option<&'a str>, AwsError> {
        match self.str_opt(member)? {
            Some(s) if !allowed.contains(&s) => Err(self.err(
                member,
                &Value::String(s.into()),
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            )),
            o => Ok(o),
        }
    }

    pub fn bool_opt(&self, member: &str) -> Result<Option<bool>, AwsError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(member, v, "Member must be a boolean")),
        }
    }

    /// An integer in `min..=max`.
    pub fn int_opt(&self, member: &str, min: i64, max: i64) -> Result<Option<i64>, AwsError> {
        match self.raw(member) {
            None => Ok(None),
            Some(v @ Value::Number(n)) => {
                let Some(i) = n.as_i64() else {
                    return Err(self.err(member, v, "Member must be an integer"));
                };
                if i < min {
                    return Err(self.err(
                        member,
                        v,
                        &format!("Member must have value greater than or equal to {min}"),
                    ));
                }
                if i > max {
                    return Err(self.err(
                        member,
                        v,
                        &format!("Member must have value less than or equal to {max}"),
                    ));
                }
                Ok(Some(i))
            }
            Some(v) => Err(self.err(member, v, "Member must be an integer")),
        }
    }

    /// A timestamp: epoch seconds (JSON 1.1), as `f64` seconds.
    pub fn time_opt(&self, member: &str) -> Result<Option<f64>, AwsError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(v) => Err(self.err(member, v, "Member must be a timestamp (epoch seconds)")),
        }
    }

    /// An integer of milliseconds (CloudWatch Logs times).
    pub fn millis_opt(&self, member: &str) -> Result<Option<i64>, AwsError> {
        self.int_opt(member, 0, i64::MAX)
    }

    /// A nested structure; `path` names it in messages.
    pub fn obj_opt(&self, member: &str, path: &'a str) -> Result<Option<Input<'a>>, AwsError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Input { map: Some(m), path })),
            Some(v) => Err(self.err(member, v, "Member must be a structure")),
        }
    }

    pub fn obj_req(&self, member: &str, path: &'a str) -> Result<Input<'a>, AwsError> {
        self.obj_opt(member, path)?
            .ok_or_else(|| self.err(member, &Value::Null, "Member must not be null"))
    }

    /// A list (its raw values).
    pub fn list_opt(&self, member: &str) -> Result<Option<&'a Vec<Value>>, AwsError> {
        match self.raw(member) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(self.err(member, v, "Member must be a list")),
        }
    }

    /// A list of strings.
    pub fn strings_opt(&self, member: &str) -> Result<Option<Vec<&'a str>>, AwsError> {
        let Some(a) = self.list_opt(member)? else {
            return Ok(None);
        };
        a.iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.err(member, v, "Member must be a list of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The items of a list of structures, each readable as an `Input` whose
    /// messages say `path`.
    pub fn items(&self, member: &str, path: &'a str) -> Result<Vec<Input<'a>>, AwsError> {
        let Some(a) = self.list_opt(member)? else {
            return Ok(Vec::new());
        };
        a.iter()
            .map(|v| match v {
                Value::Object(m) => Ok(Input { map: Some(m), path }),
                v => Err(self.err(member, v, "Member must be a list of structures")),
            })
            .collect()
    }

    /// The raw value of a member (for pass-through shapes).
    pub fn value(&self, member: &str) -> Option<&'a Value> {
        self.raw(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_name_the_member() {
        let body = json!({"name": 3, "filter": {"stageName": []}});
        let i = Input::root(&body).unwrap();
        let e = i.str_req("name").unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(e.message.contains("at 'name'"), "{}", e.message);
        let e = i.str_req("pipelineName").unwrap_err();
        assert!(e.message.contains("at 'pipelineName'") && e.message.contains("not be null"));
        let f = i.obj_req("filter", "filter").unwrap();
        let e = f.str_req("stageName").unwrap_err();
        assert!(e.message.contains("at 'filter.stageName'"), "{}", e.message);
        assert!(Input::root(&json!([1])).is_err());
    }

    #[test]
    fn ranges() {
        let body = json!({"maxResults": 0, "x": 1.5});
        let i = Input::root(&body).unwrap();
        assert!(i.int_opt("maxResults", 1, 100).is_err());
        assert!(i.int_opt("x", 1, 100).is_err());
        assert_eq!(i.int_opt("absent", 1, 100).unwrap(), None);
    }
}
