//! CodeDeploy deployment configurations as traffic steps (reference §4):
//! `CodeDeployDefault.ECSAllAtOnce`, `…ECSCanary10Percent5Minutes`,
//! `…ECSLinear10PercentEvery1Minutes` (and the Lambda names), plus custom
//! `TimeBasedCanary` / `TimeBasedLinear` settings. A step is "this much of
//! the traffic on the new version, then wait this long".

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum TrafficRouting {
    AllAtOnce,
    /// `percentage` first, then the rest after `interval`.
    Canary {
        percentage: u32,
        interval: Duration,
    },
    /// `percentage` more every `interval` until all of it.
    Linear {
        percentage: u32,
        interval: Duration,
    },
}

/// One step: the new version's share of traffic, then how long to bake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub percent: u32,
    pub wait: Duration,
}

impl TrafficRouting {
    /// Reads a CodeDeploy configuration name (with or without the
    /// `CodeDeployDefault.` prefix), e.g. `ECSCanary10Percent5Minutes`,
    /// `LambdaLinear10PercentEvery1Minute`, `ECSAllAtOnce`, `AllAtOnce`.
    pub fn from_name(name: &str) -> Result<TrafficRouting, String> {
        let n = name.strip_prefix("CodeDeployDefault.").unwrap_or(name);
        let n = n
            .strip_prefix("ECS")
            .or_else(|| n.strip_prefix("Lambda"))
            .unwrap_or(n);
        if n == "AllAtOnce" {
            return Ok(TrafficRouting::AllAtOnce);
        }
        let bad = || {
            format!(
                "`{name}` is not a CodeDeploy configuration pipedeck knows: use AllAtOnce, \
                 Canary<P>Percent<N>Minutes or Linear<P>PercentEvery<N>Minute(s) \
                 (e.g. CodeDeployDefault.ECSCanary10Percent5Minutes)"
            )
        };
        let (kind, rest) = if let Some(r) = n.strip_prefix("Canary") {
            ("canary", r)
        } else if let Some(r) = n.strip_prefix("Linear") {
            ("linear", r)
        } else {
            return Err(bad());
        };
        let (pct, rest) = rest.split_once("Percent").ok_or_else(bad)?;
        let pct: u32 = pct.parse().map_err(|_| bad())?;
        let rest = rest.strip_prefix("Every").unwrap_or(rest);
        let mins = rest
            .strip_suffix("Minutes")
            .or_else(|| rest.strip_suffix("Minute"))
            .ok_or_else(bad)?;
        let mins: u64 = mins.parse().map_err(|_| bad())?;
        if pct == 0 || pct > 99 {
            return Err(format!("`{name}`: the percentage must be 1 to 99"));
        }
        let interval = Duration::from_secs(mins * 60);
        Ok(match kind {
            "canary" => TrafficRouting::Canary {
                percentage: pct,
                interval,
            },
            _ => TrafficRouting::Linear {
                percentage: pct,
                interval,
            },
        })
    }

    /// The steps, with CodeDeploy's minutes scaled by `time_scale` (the
    /// demo runs minutes as seconds with `1/60`).
    pub fn steps(&self, time_scale: f64) -> Vec<Step> {
        let scale = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() * time_scale.max(0.0));
        match *self {
            TrafficRouting::AllAtOnce => vec![Step {
                percent: 100,
                wait: Duration::ZERO,
            }],
            TrafficRouting::Canary {
                percentage,
                interval,
            } => vec![
                Step {
                    percent: percentage,
                    wait: scale(interval),
                },
                Step {
                    percent: 100,
                    wait: Duration::ZERO,
                },
            ],
            TrafficRouting::Linear {
                percentage,
                interval,
            } => {
                let mut out = Vec::new();
                let mut p = 0;
                while p < 100 {
                    p = (p + percentage).min(100);
                    out.push(Step {
                        percent: p,
                        wait: if p < 100 {
                            scale(interval)
                        } else {
                            Duration::ZERO
                        },
                    });
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codedeploy_names_become_traffic_steps() {
        let c = TrafficRouting::from_name("CodeDeployDefault.ECSCanary10Percent5Minutes").unwrap();
        assert_eq!(
            c.steps(1.0),
            [
                Step {
                    percent: 10,
                    wait: Duration::from_secs(300)
                },
                Step {
                    percent: 100,
                    wait: Duration::ZERO
                }
            ]
        );
        let l = TrafficRouting::from_name("CodeDeployDefault.LambdaLinear10PercentEvery1Minute")
            .unwrap();
        let steps = l.steps(1.0 / 60.0);
        assert_eq!(steps.len(), 10);
        assert_eq!(
            steps[0],
            Step {
                percent: 10,
                wait: Duration::from_secs(1)
            }
        );
        assert_eq!(
            steps[9],
            Step {
                percent: 100,
                wait: Duration::ZERO
            }
        );
        let l3 = TrafficRouting::from_name("ECSLinear30PercentEvery3Minutes").unwrap();
        let p: Vec<u32> = l3.steps(1.0).iter().map(|s| s.percent).collect();
        assert_eq!(p, [30, 60, 90, 100]);
        assert_eq!(
            TrafficRouting::from_name("CodeDeployDefault.ECSAllAtOnce").unwrap(),
            TrafficRouting::AllAtOnce
        );
        let err = TrafficRouting::from_name("HalfAtATime").unwrap_err();
        assert!(err.contains("ECSCanary10Percent5Minutes"), "{err}");
        assert!(TrafficRouting::from_name("Canary0Percent5Minutes").is_err());
    }
}
