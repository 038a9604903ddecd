//! Forecasts of a utilization series, each with its error, because a
//! capacity plan that says "/var reaches 90% in 23 days" must also say how
//! sure it is.
//!
//! - [`Linear`]: least-squares trend, with the standard error of its slope;
//!   [`Linear::time_to`] gives when the trend reaches a threshold, with the
//!   range the slope's standard error allows.
//! - [`HoltWinters`]: additive level, trend and season (a daily or weekly
//!   period), its smoothing parameters chosen by grid search for the
//!   smallest one-step-ahead error over the history; that error (RMSE) is
//!   reported with the forecast.

/// A least-squares line `y = intercept + slope · t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    pub slope: f64,
    pub intercept: f64,
    /// Standard error of the slope (0 for a perfect fit).
    pub slope_error: f64,
    /// Root mean square of the residuals.
    pub rmse: f64,
}

/// When a series reaches a threshold: the trend's estimate and the range
/// one standard error of the slope either way gives. `latest` is `None`
/// when the slower slope never gets there (flat or falling).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    pub at: f64,
    pub earliest: f64,
    pub latest: Option<f64>,
}

impl Linear {
    /// The fit of `points` (`(t, y)`); `None` with fewer than three points
    /// or all at one `t`.
    pub fn fit(points: &[(f64, f64)]) -> Option<Linear> {
        let n = points.len() as f64;
        if points.len() < 3 {
            return None;
        }
        let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let stt: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
        if stt == 0.0 {
            return None;
        }
        let sty: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_y)).sum();
        let slope = sty / stt;
        let intercept = mean_y - slope * mean_t;
        let sse: f64 = points
            .iter()
            .map(|p| (p.1 - intercept - slope * p.0).powi(2))
            .sum();
        Some(Linear {
            slope,
            intercept,
            slope_error: (sse / (n - 2.0) / stt).sqrt(),
            rmse: (sse / n).sqrt(),
        })
    }

    pub fn at(&self, t: f64) -> f64 {
        self.intercept + self.slope * t
    }

    /// When the trend reaches `threshold`, after `now`. `None` when it is
    /// not growing towards it (or is already past it: that is a breach,
    /// not a forecast).
    pub fn time_to(&self, threshold: f64, now: f64) -> Option<Crossing> {
        let current = self.at(now);
        if current >= threshold || self.slope <= 0.0 {
            return None;
        }
        let gap = threshold - current;
        let after = |slope: f64| (slope > 0.0).then(|| now + gap / slope);
        Some(Crossing {
            at: after(self.slope)?,
            earliest: after(self.slope + self.slope_error)?,
            latest: after(self.slope - self.slope_error),
        })
    }
}

/// An additive Holt-Winters model fitted to a series of evenly spaced
/// samples.
#[derive(Debug, Clone, PartialEq)]
pub struct HoltWinters {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub period: usize,
    level: f64,
    trend: f64,
    season: Vec<f64>,
    /// Root mean square of the one-step-ahead errors over the history
    /// after the first period.
    pub rmse: f64,
}

impl HoltWinters {
    /// Fits `series` with season length `period`; needs two whole periods.
    /// The smoothing parameters minimise the one-step-ahead error: a coarse
    /// grid first, then the neighbourhood of its best point (75 passes over
    /// the series, where a fine grid takes hundreds).
    pub fn fit(series: &[f64], period: usize) -> Option<HoltWinters> {
        if period < 2 || series.len() < 2 * period {
            return None;
        }
        const LEVELS: [f64; 4] = [0.05, 0.2, 0.5, 0.9];
        const TRENDS: [f64; 3] = [0.0, 0.05, 0.2];
        let best_of = |grid: &mut dyn Iterator<Item = (f64, f64, f64)>| {
            grid.map(|(a, b, g)| Self::run(series, period, a, b, g))
                .min_by(|x, y| x.rmse.total_cmp(&y.rmse))
        };
        let coarse = best_of(&mut LEVELS.into_iter().flat_map(|a| {
            TRENDS
                .into_iter()
                .flat_map(move |b| LEVELS.into_iter().map(move |g| (a, b, g)))
        }))?;
        let near = |v: f64| [v * 0.6, v, (v * 1.5).min(0.99)];
        let near_trend = |v: f64| [v * 0.5, v, v * 1.5 + 0.01];
        let fine = best_of(&mut near(coarse.alpha).into_iter().flat_map(|a| {
            near_trend(coarse.beta)
                .into_iter()
                .flat_map(move |b| near(coarse.gamma).into_iter().map(move |g| (a, b, g)))
        }))?;
        Some(if fine.rmse < coarse.rmse {
            fine
        } else {
            coarse
        })
    }

    fn run(series: &[f64], period: usize, alpha: f64, beta: f64, gamma: f64) -> HoltWinters {
        let first: f64 = series[..period].iter().sum::<f64>() / period as f64;
        let second: f64 = series[period..2 * period].iter().sum::<f64>() / period as f64;
        let mut level = first;
        let mut trend = (second - first) / period as f64;
        let mut season: Vec<f64> = series[..period].iter().map(|y| y - first).collect();
        let mut sse = 0.0;
        let mut errors = 0usize;
        // The slot of the sample at `period + i` is `i % period`: the
        // rest of the series walks the season in whole turns.
        for turn in series[period..].chunks(period) {
            for (slot, &y) in season.iter_mut().zip(turn) {
                let s = *slot;
                let predicted = level + trend + s;
                sse += (y - predicted).powi(2);
                errors += 1;
                let previous_level = level;
                level = alpha * (y - s) + (1.0 - alpha) * (level + trend);
                trend = beta * (level - previous_level) + (1.0 - beta) * trend;
                *slot = gamma * (y - level) + (1.0 - gamma) * s;
            }
        }
        // The forecast continues where the series ended: season slots are
        // indexed from the series' start.
        let offset = series.len() % period;
        season.rotate_left(offset);
        HoltWinters {
            alpha,
            beta,
            gamma,
            period,
            level,
            trend,
            season,
            rmse: (sse / errors.max(1) as f64).sqrt(),
        }
    }

    /// The next `horizon` samples after the series.
    pub fn forecast(&self, horizon: usize) -> Vec<f64> {
        (1..=horizon)
            .map(|h| self.level + h as f64 * self.trend + self.season[(h - 1) % self.period])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_growth_reaches_its_threshold_when_arithmetic_says() {
        // 10% used, growing 2 points a day, sampled daily for 30 days.
        let points: Vec<(f64, f64)> = (0..30).map(|d| (d as f64, 10.0 + 2.0 * d as f64)).collect();
        let fit = Linear::fit(&points).unwrap();
        assert!((fit.slope - 2.0).abs() < 1e-9 && (fit.intercept - 10.0).abs() < 1e-9);
        assert!(fit.slope_error < 1e-9);
        let crossing = fit.time_to(90.0, 29.0).unwrap();
        assert!((crossing.at - 40.0).abs() < 1e-9, "{crossing:?}");
        // Flat or falling never gets there; already past is a breach.
        let flat = Linear::fit(&[(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]).unwrap();
        assert_eq!(flat.time_to(90.0, 2.0), None);
        assert_eq!(fit.time_to(20.0, 29.0), None);
    }

    #[test]
    fn noise_widens_the_range() {
        // The same growth with ±3 points of alternating noise.
        let points: Vec<(f64, f64)> = (0..30)
            .map(|d| {
                (
                    d as f64,
                    10.0 + 2.0 * d as f64 + if d % 2 == 0 { 3.0 } else { -3.0 },
                )
            })
            .collect();
        let fit = Linear::fit(&points).unwrap();
        let c = fit.time_to(90.0, 29.0).unwrap();
        assert!((c.at - 40.0).abs() < 1.0, "{c:?}");
        assert!(c.earliest < c.at && c.latest.unwrap() > c.at, "{c:?}");
        assert!(fit.rmse > 2.9 && fit.rmse < 3.1, "{}", fit.rmse);
    }

    #[test]
    fn daily_seasonality_plus_trend_is_forecast_within_tolerance() {
        // Hourly CPU: 40% baseline, +0.05 points an hour, a 15-point daily
        // swing; 14 days of history, the next day forecast.
        let at = |h: usize| {
            40.0 + 0.05 * h as f64
                + 15.0 * (2.0 * std::f64::consts::PI * (h % 24) as f64 / 24.0).sin()
        };
        let history: Vec<f64> = (0..14 * 24).map(at).collect();
        let model = HoltWinters::fit(&history, 24).unwrap();
        let forecast = model.forecast(24);
        for (i, predicted) in forecast.iter().enumerate() {
            let actual = at(14 * 24 + i);
            assert!(
                (predicted - actual).abs() < 1.0,
                "hour {i}: {predicted} against {actual}"
            );
        }
        assert!(model.rmse < 1.0, "{}", model.rmse);
        // A straight line through the same history misses the swing.
        let points: Vec<(f64, f64)> = history
            .iter()
            .enumerate()
            .map(|(h, y)| (h as f64, *y))
            .collect();
        assert!(Linear::fit(&points).unwrap().rmse > 10.0);
    }

    #[test]
    fn too_little_history_is_no_forecast() {
        assert!(HoltWinters::fit(&[1.0; 47], 24).is_none());
        assert!(Linear::fit(&[(0.0, 1.0), (1.0, 2.0)]).is_none());
    }
}
