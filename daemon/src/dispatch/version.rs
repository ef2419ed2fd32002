//! lymph's version requirement on a call: `1.2` matches instances with a
//! version `>=1.2.0, <2.0.0`.

use crate::error::{CallError, ErrorKind};
use crate::spec::version_key;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReq {
    min: (u64, u64, u64),
}

impl VersionReq {
    pub fn parse(text: &str) -> Result<Self, CallError> {
        let parts: Vec<&str> = text.split('.').collect();
        let nums: Option<Vec<u64>> = parts.iter().map(|p| p.parse::<u64>().ok()).collect();
        match nums.as_deref() {
            Some([major]) => Ok(VersionReq {
                min: (*major, 0, 0),
            }),
            Some([major, minor]) => Ok(VersionReq {
                min: (*major, *minor, 0),
            }),
            Some([major, minor, patch]) => Ok(VersionReq {
                min: (*major, *minor, *patch),
            }),
            _ => Err(CallError::new(
                ErrorKind::Invalid,
                format!("invalid version requirement {text:?}: write 1, 1.2 or 1.2.3"),
            )),
        }
    }

    pub fn matches(&self, version: Option<&str>) -> bool {
        let Some(version) = version else {
            return false;
        };
        let v = version_key(version);
        v.0 == self.min.0 && v >= self.min
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_and_at_least_the_minimum() {
        let req = VersionReq::parse("1.2").expect("valid");
        assert!(req.matches(Some("1.2.0")));
        assert!(req.matches(Some("1.10.3")));
        assert!(!req.matches(Some("1.1.9")));
        assert!(!req.matches(Some("2.0.0")));
        assert!(!req.matches(None));
        assert!(VersionReq::parse("1.x").is_err());
    }
}
