//! `NVIDIA_REQUIRE_CUDA`, as libnvidia-container reads it: constraints
//! separated by spaces are ORed, by commas ANDed, each `key op value` with
//! key `cuda`, `driver`, `arch` or `brand` and op `=` `!=` `<` `<=` `>` `>=`.
//! `cuda>=11.8 brand=tesla,driver>=450,driver<451` is "CUDA ≥ 11.8, or a
//! Tesla with driver 450.x".

use std::cmp::Ordering;

/// What the host offers. A fact left `None` is unknown; a constraint on it
/// holds (launch refuses only what it knows cannot run; the runtime checks
/// again where it can).
#[derive(Debug, Clone, Default)]
pub struct Offered {
    /// The CUDA version the driver supports, e.g. "12.4".
    pub cuda: Option<String>,
    pub driver: Option<String>,
    /// e.g. "tesla", "geforce".
    pub brand: Option<String>,
    /// Compute capability, e.g. "9.0".
    pub arch: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Constraint {
    key: String,
    op: Op,
    value: String,
}

/// A parsed requirement: ORed groups of ANDed constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    any: Vec<Vec<Constraint>>,
}

impl Requirement {
    pub fn parse(text: &str) -> Result<Requirement, String> {
        let any = text
            .split_whitespace()
            .map(|group| group.split(',').map(constraint).collect())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Requirement { any })
    }

    /// Whether the host meets it (an empty requirement always does).
    pub fn met_by(&self, offered: &Offered) -> bool {
        self.any.is_empty()
            || self
                .any
                .iter()
                .any(|all| all.iter().all(|c| c.holds(offered)))
    }

    /// The lowest CUDA version any group asks for (`cuda>=X` or `cuda>X`),
    /// for the refusal's message.
    pub fn min_cuda(&self) -> Option<&str> {
        self.any
            .iter()
            .flatten()
            .filter(|c| c.key == "cuda" && matches!(c.op, Op::Ge | Op::Gt | Op::Eq))
            .map(|c| c.value.as_str())
            .min_by(|a, b| compare(a, b))
    }
}

fn constraint(text: &str) -> Result<Constraint, String> {
    let at = text
        .find(['<', '>', '=', '!'])
        .ok_or_else(|| format!("`{text}` has no operator (<, <=, =, !=, >=, >)"))?;
    let (key, rest) = text.split_at(at);
    let (op, value) = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("!=", Op::Ne),
        ("==", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
        ("=", Op::Eq),
    ]
    .iter()
    .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v)))
    .ok_or_else(|| format!("`{text}`: unknown operator"))?;
    let key = key.to_ascii_lowercase();
    if !matches!(key.as_str(), "cuda" | "driver" | "arch" | "brand") {
        return Err(format!(
            "`{text}`: unknown key `{key}` (expected cuda, driver, arch or brand)"
        ));
    }
    if value.is_empty() {
        return Err(format!("`{text}` has no value"));
    }
    let version = |v: &str| {
        v.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let ok = if key == "brand" {
        value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    } else {
        version(value)
    };
    if !ok {
        return Err(format!("`{text}`: `{value}` is not a valid {key} value"));
    }
    Ok(Constraint {
        key,
        op,
        value: value.to_string(),
    })
}

impl Constraint {
    fn holds(&self, offered: &Offered) -> bool {
        let have = match self.key.as_str() {
            "cuda" => &offered.cuda,
            "driver" => &offered.driver,
            "arch" => &offered.arch,
            _ => &offered.brand,
        };
        let Some(have) = have else {
            return true;
        };
        let order = if self.key == "brand" {
            have.to_ascii_lowercase()
                .cmp(&self.value.to_ascii_lowercase())
        } else {
            compare(have, &self.value)
        };
        match self.op {
            Op::Eq => order == Ordering::Equal,
            Op::Ne => order != Ordering::Equal,
            Op::Lt => order == Ordering::Less,
            Op::Le => order != Ordering::Greater,
            Op::Gt => order == Ordering::Greater,
            Op::Ge => order != Ordering::Less,
        }
    }
}

/// Dotted versions, numerically part by part ("12.10" > "12.9"); a missing
/// part is 0 ("12" = "12.0").
fn compare(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Vec<u64> {
        v.split('.')
            .map(|p| p.trim().parse().unwrap_or(0))
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// NVML's CUDA driver version (e.g. 12040) as "12.4".
pub fn cuda_from_nvml(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// The refusal when an image's requirement is not met: both versions.
pub fn refusal(image: &str, requirement: &Requirement, text: &str, offered: &Offered) -> String {
    let needs = match requirement.min_cuda() {
        Some(v) => format!("needs CUDA ≥ {v}"),
        None => format!("requires {text}"),
    };
    let driver = offered.driver.as_deref().unwrap_or("unknown");
    let cuda = offered.cuda.as_deref().unwrap_or("an unknown CUDA version");
    format!(
        "image {image} {needs} (NVIDIA_REQUIRE_CUDA={text}); driver {driver} supports {cuda}: upgrade the driver, use an image built for CUDA {cuda} or older, or set `require_cuda = false` under [gpus] to start it anyway"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(cuda: &str, driver: &str) -> Offered {
        Offered {
            cuda: Some(cuda.into()),
            driver: Some(driver.into()),
            ..Default::default()
        }
    }

    fn met(req: &str, offered: &Offered) -> bool {
        Requirement::parse(req).expect("parses").met_by(offered)
    }

    #[test]
    fn a_cuda_minimum_compares_versions_numerically() {
        let h = host("12.4", "550.54.15");
        assert!(met("cuda>=12.4", &h));
        assert!(met("cuda>=12.2", &h));
        assert!(!met("cuda>=12.8", &h));
        assert!(!met("cuda>=99.0", &h));
        assert!(met("cuda>=11.10", &host("12.0", "525.60.13")));
        assert!(!met("cuda>=12.10", &host("12.9", "575.51.03")));
        assert!(met("", &h), "no requirement");
    }

    #[test]
    fn spaces_or_and_commas_and() {
        // NVIDIA's CUDA 11.8 images: 11.8, or a Tesla with driver 450.x or 470.x.
        let req =
            "cuda>=11.8 brand=tesla,driver>=450,driver<451 brand=tesla,driver>=470,driver<471";
        assert!(met(req, &host("11.8", "520.61.05")));
        let mut tesla_470 = host("11.4", "470.82.01");
        tesla_470.brand = Some("Tesla".into());
        assert!(met(req, &tesla_470));
        let mut geforce_470 = tesla_470.clone();
        geforce_470.brand = Some("geforce".into());
        assert!(!met(req, &geforce_470));
        // Neither clause: an old driver of another branch.
        let mut tesla_460 = host("11.2", "460.91.03");
        tesla_460.brand = Some("tesla".into());
        assert!(!met(req, &tesla_460));
    }

    #[test]
    fn an_unknown_fact_does_not_refuse() {
        // The brand is not probed: the Tesla 470 clause may hold.
        let req = "cuda>=11.8 brand=tesla,driver>=470,driver<471";
        assert!(met(req, &host("11.4", "470.82.01")));
        assert!(!met(req, &host("11.4", "460.91.03")));
    }

    #[test]
    fn bad_constraints_say_what_is_wrong() {
        assert!(
            Requirement::parse("cuda")
                .unwrap_err()
                .contains("no operator")
        );
        assert!(
            Requirement::parse("gpu>=1")
                .unwrap_err()
                .contains("unknown key `gpu`")
        );
        assert!(
            Requirement::parse("cuda>=")
                .unwrap_err()
                .contains("no value")
        );
        assert!(
            Requirement::parse("cuda=>12")
                .unwrap_err()
                .contains("not a valid cuda value")
        );
    }

    #[test]
    fn the_refusal_names_both_versions() {
        let text = "cuda>=12.8 brand=tesla,driver>=470,driver<471";
        let req = Requirement::parse(text).expect("parses");
        let msg = refusal("img", &req, text, &host("12.2", "535.104.05"));
        assert!(
            msg.contains("needs CUDA ≥ 12.8") && msg.contains("driver 535.104.05 supports 12.2"),
            "{msg}"
        );
        assert_eq!(cuda_from_nvml(12040), "12.4");
        assert_eq!(cuda_from_nvml(11080), "11.8");
    }
}
