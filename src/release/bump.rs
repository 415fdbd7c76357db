//! Version bumps: the semver 2.0 specification, with pre-releases handled
//! exactly as node-semver's `inc` does (the rules most release tools share).

use std::fmt;

use semver::{BuildMetadata, Prerelease, Version};

/// What `shipit release LEVEL` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Major,
    Minor,
    Patch,
    Premajor,
    Preminor,
    Prepatch,
    Prerelease,
    /// Drop the pre-release part: 1.2.3-rc.1 -> 1.2.3.
    Release,
}

impl Level {
    pub const ALL: [Level; 8] = [
        Level::Major,
        Level::Minor,
        Level::Patch,
        Level::Premajor,
        Level::Preminor,
        Level::Prepatch,
        Level::Prerelease,
        Level::Release,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Major => "major",
            Level::Minor => "minor",
            Level::Patch => "patch",
            Level::Premajor => "premajor",
            Level::Preminor => "preminor",
            Level::Prepatch => "prepatch",
            Level::Prerelease => "prerelease",
            Level::Release => "release",
        }
    }

    pub fn parse(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One dot-separated pre-release identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ident {
    Num(u64),
    Alpha(String),
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ident::Num(n) => write!(f, "{n}"),
            Ident::Alpha(s) => f.write_str(s),
        }
    }
}

fn idents(pre: &str) -> Vec<Ident> {
    if pre.is_empty() {
        return Vec::new();
    }
    pre.split('.')
        .map(|part| match part.parse::<u64>() {
            Ok(n) if part.bytes().all(|b| b.is_ascii_digit()) => Ident::Num(n),
            _ => Ident::Alpha(part.to_string()),
        })
        .collect()
}

/// Why a bump cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BumpError {
    NotPrerelease(Version),
    BadPreId(String),
    Overflow,
}

impl fmt::Display for BumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BumpError::NotPrerelease(v) => write!(
                f,
                "`release` drops the pre-release part, but {v} is not a pre-release (use major, minor or patch)"
            ),
            BumpError::BadPreId(id) => write!(
                f,
                "`{id}` is not a valid pre-release identifier: use ASCII letters, digits and hyphens (e.g. rc, beta, alpha.1), numbers without leading zeros"
            ),
            BumpError::Overflow => f.write_str("the version number would overflow"),
        }
    }
}

/// Working state, mirroring node-semver's `SemVer` during `inc`.
struct State {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<Ident>,
}

/// The next version after `current` at `level`, with `pre_id` naming the
/// pre-release (`rc`, `beta`, ...). Build metadata is dropped, as node-semver does.
pub fn bump(current: &Version, level: Level, pre_id: Option<&str>) -> Result<Version, BumpError> {
    if let Some(id) = pre_id {
        let valid =
            !id.is_empty() && Prerelease::new(id).is_ok() && id.split('.').all(|p| !p.is_empty());
        if !valid {
            return Err(BumpError::BadPreId(id.to_string()));
        }
    }
    let mut s = State {
        major: current.major,
        minor: current.minor,
        patch: current.patch,
        pre: idents(current.pre.as_str()),
    };
    let id = pre_id.filter(|i| !i.is_empty());
    match level {
        Level::Premajor => {
            s.pre.clear();
            s.patch = 0;
            s.minor = 0;
            s.major = inc(s.major)?;
            s.pre_step(id)?;
        }
        Level::Preminor => {
            s.pre.clear();
            s.patch = 0;
            s.minor = inc(s.minor)?;
            s.pre_step(id)?;
        }
        Level::Prepatch => {
            s.pre.clear();
            s.patch_step()?;
            s.pre_step(id)?;
        }
        Level::Prerelease => {
            if s.pre.is_empty() {
                s.patch_step()?;
            }
            s.pre_step(id)?;
        }
        Level::Release => {
            if s.pre.is_empty() {
                return Err(BumpError::NotPrerelease(current.clone()));
            }
            s.pre.clear();
        }
        Level::Major => {
            // 1.0.0-5 -> 1.0.0; 1.1.0 -> 2.0.0
            if s.minor != 0 || s.patch != 0 || s.pre.is_empty() {
                s.major = inc(s.major)?;
            }
            s.minor = 0;
            s.patch = 0;
            s.pre.clear();
        }
        Level::Minor => {
            // 1.2.0-5 -> 1.2.0; 1.2.1 -> 1.3.0
            if s.patch != 0 || s.pre.is_empty() {
                s.minor = inc(s.minor)?;
            }
            s.patch = 0;
            s.pre.clear();
        }
        Level::Patch => s.patch_step()?,
    }
    let pre = s
        .pre
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(".");
    Ok(Version {
        major: s.major,
        minor: s.minor,
        patch: s.patch,
        pre: Prerelease::new(&pre).map_err(|_| BumpError::BadPreId(pre.clone()))?,
        build: BuildMetadata::EMPTY,
    })
}

fn inc(n: u64) -> Result<u64, BumpError> {
    n.checked_add(1).ok_or(BumpError::Overflow)
}

impl State {
    /// 1.2.0-5 -> 1.2.0; 1.2.0 -> 1.2.1
    fn patch_step(&mut self) -> Result<(), BumpError> {
        if self.pre.is_empty() {
            self.patch = inc(self.patch)?;
        }
        self.pre.clear();
        Ok(())
    }

    /// node-semver's `inc('pre', identifier)`.
    fn pre_step(&mut self, id: Option<&str>) -> Result<(), BumpError> {
        if self.pre.is_empty() {
            self.pre = vec![Ident::Num(0)];
        } else if let Some(last) = self.pre.iter_mut().rev().find_map(|i| match i {
            Ident::Num(n) => Some(n),
            Ident::Alpha(_) => None,
        }) {
            *last = inc(*last)?;
        } else {
            self.pre.push(Ident::Num(0));
        }
        if let Some(id) = id {
            let fresh = {
                let mut v = idents(id);
                v.push(Ident::Num(0));
                v
            };
            let same_name = self.pre.first().is_some_and(|first| same_ident(first, id));
            if !same_name || !matches!(self.pre.get(1), Some(Ident::Num(_))) {
                self.pre = fresh;
            }
        }
        Ok(())
    }
}

/// node-semver's `compareIdentifiers(a, b) === 0`.
fn same_ident(a: &Ident, b: &str) -> bool {
    match (a, b.parse::<u64>()) {
        (Ident::Num(n), Ok(m)) => *n == m,
        _ => a.to_string() == b,
    }
}
