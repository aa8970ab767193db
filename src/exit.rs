//! Exit codes, and how the codes of several profiles combine.

use std::fmt;

/// How a run ended. A folder's code is the most severe of its profiles':
/// invalid > refused > runtime error > plan-would-change > ok, so a CI gate
/// that accepts "plan would change" (4) never lets an invalid profile through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Exit {
    /// 0: done, changed or not.
    #[default]
    Ok,
    /// 4: `plan` only: `up` would change something.
    PlanChanges,
    /// 1: a runtime error (engine unreachable, pull failed, no driver, …).
    Runtime,
    /// 3: refused (a foreign container, files a recreate would lose, too few free GPUs).
    Refused,
    /// 2: an invalid profile or usage.
    Invalid,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Runtime => 1,
            Exit::Invalid => 2,
            Exit::Refused => 3,
            Exit::PlanChanges => 4,
        }
    }

    /// Rank in the severity order (higher is more severe).
    fn severity(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::PlanChanges => 1,
            Exit::Runtime => 2,
            Exit::Refused => 3,
            Exit::Invalid => 4,
        }
    }

    /// The more severe of two.
    pub fn worst(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl FromIterator<Exit> for Exit {
    fn from_iter<I: IntoIterator<Item = Exit>>(iter: I) -> Exit {
        iter.into_iter().fold(Exit::Ok, Exit::worst)
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn the_most_severe_code_wins_whatever_its_number() {
        let order = [
            Exit::Ok,
            Exit::PlanChanges,
            Exit::Runtime,
            Exit::Refused,
            Exit::Invalid,
        ];
        for (i, a) in order.iter().enumerate() {
            for b in &order[i..] {
                assert_eq!(a.worst(*b), *b, "{a:?} vs {b:?}");
                assert_eq!(b.worst(*a), *b, "{b:?} vs {a:?}");
            }
        }
        // 2 beats 4 although 4 is the larger number.
        let folder: Exit = [Exit::PlanChanges, Exit::Invalid].into_iter().collect();
        assert_eq!(folder.code(), 2);
    }
}
