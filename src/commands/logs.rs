//! `shipit logs ENV`: the serving release's lines from every host (or
//! pod), merged in time order, filtered, or followed.

use super::Context;
use crate::config::rules;
use crate::error::Error;
use crate::target::{self, logs::LogsRequest};

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub environment: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub lines: Option<usize>,
    pub grep: Option<String>,
    pub host: Option<String>,
    pub follow: bool,
    pub gateway: bool,
    pub role: Option<String>,
}

/// `--since 10m` (that long ago) or `--since 2026-12-03T17:00:00Z`: epoch seconds.
pub fn moment(flag: &str, text: &str, now: i64) -> Result<i64, Error> {
    if let Some(ago) = rules::parse_duration(text) {
        return Ok(now - ago.as_secs() as i64);
    }
    crate::clock::parse_rfc3339(text).ok_or_else(|| {
        Error::Usage(format!(
            "{flag} {text}: expected a duration ago (30s, 10m, 2h) or an RFC 3339 time (2026-12-03T17:00:00Z)"
        ))
    })
}

pub fn request(args: &Args, now: i64) -> Result<LogsRequest, Error> {
    if args.follow && args.until.is_some() {
        return Err(Error::Usage(
            "--follow and --until: a followed log has no end; choose one".into(),
        ));
    }
    let grep = match &args.grep {
        Some(pattern) => Some(regex_lite::Regex::new(pattern).map_err(|e| {
            Error::Usage(format!("--grep {pattern}: not a regular expression: {e}"))
        })?),
        None => None,
    };
    Ok(LogsRequest {
        since: args
            .since
            .as_deref()
            .map(|t| moment("--since", t, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| moment("--until", t, now))
            .transpose()?,
        lines: args.lines,
        grep,
        host: args.host.clone(),
        follow: args.follow,
        gateway: args.gateway,
        role: args.role.clone(),
    })
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let request = request(args, crate::clock::now())?;
    let (loaded, target) = target::load(&ctx.project, &ctx.overrides, &args.environment)?;
    if let Some(role) = &args.role {
        let roles = &loaded.config.roles;
        if role != "web" && !roles.contains_key(role) {
            let mut known = vec!["web"];
            known.extend(roles.keys().map(String::as_str));
            return Err(Error::Usage(format!(
                "--role {role}: {} has no such role (its roles: {})",
                args.environment,
                known.join(", ")
            )));
        }
    }
    target.logs(&ctx.out, &request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_flags_are_usage_errors_before_anything_is_asked() {
        let args = |f: fn(&mut Args)| {
            let mut a = Args::default();
            f(&mut a);
            request(&a, 1_000_000)
        };
        let e = args(|a| {
            a.follow = true;
            a.until = Some("1m".into())
        })
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = args(|a| a.grep = Some("(".into())).unwrap_err();
        assert!(e.to_string().contains("not a regular expression"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let e = args(|a| a.since = Some("yesterday".into())).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let ok = args(|a| a.since = Some("10m".into())).unwrap();
        assert_eq!(ok.since, Some(1_000_000 - 600));
        let ok = args(|a| a.until = Some("1970-01-02T00:00:00Z".into())).unwrap();
        assert_eq!(ok.until, Some(86_400));
    }
}
