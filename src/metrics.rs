//! Counters and histograms for `/metrics` (Prometheus text format): calls and their outcome
//! and latency per operation, whatever the front, and the event relay's progress.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels<const N: usize> = [(&'static str, &'static str); N];

fn latency_histogram() -> Histogram {
    // 25 µs to about 0.8 s.
    Histogram::new(exponential_buckets(0.000_025, 2.0, 16))
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    calls: Family<Labels<2>, Counter>,
    latency: Family<Labels<1>, Histogram, fn() -> Histogram>,
    backlog: Gauge<i64, AtomicI64>,
    published: Counter,
    refused: Family<Labels<1>, Counter>,
    redis_up: Gauge<i64, AtomicI64>,
}

/// The process's metrics; cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("isms");
        let calls = Family::<Labels<2>, Counter>::default();
        registry.register("operation_calls", "Operation calls by outcome (ok or the error kind)", calls.clone());
        let latency =
            Family::<Labels<1>, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register("operation_duration_seconds", "Time to serve an operation, in seconds", latency.clone());
        let backlog = Gauge::<i64, AtomicI64>::default();
        registry.register("outbox_backlog", "Events committed but not yet published to Redis", backlog.clone());
        let published = Counter::default();
        registry.register("events_published", "Events this process published to Redis", published.clone());
        let refused = Family::<Labels<1>, Counter>::default();
        registry.register("http_refused", "HTTP requests refused for want of a valid bearer token", refused.clone());
        let redis_up = Gauge::<i64, AtomicI64>::default();
        registry.register("redis_up", "1 while the event relay is connected to Redis", redis_up.clone());
        Metrics(Arc::new(Inner { registry, calls, latency, backlog, published, refused, redis_up }))
    }
}

impl Metrics {
    /// Counts one call of `operation` that ended with `outcome` after `elapsed`.
    pub fn observe(&self, operation: &'static str, outcome: &'static str, elapsed: Duration) {
        self.0.calls.get_or_create(&[("operation", operation), ("outcome", outcome)]).inc();
        self.0.latency.get_or_create(&[("operation", operation)]).observe(elapsed.as_secs_f64());
    }

    /// Counts a request refused at the door (`missing_token`, `invalid_token`).
    pub fn refused(&self, reason: &'static str) {
        self.0.refused.get_or_create(&[("reason", reason)]).inc();
    }

    /// Counts events published by the relay.
    pub fn events_published(&self, count: usize) {
        self.0.published.inc_by(count as u64);
    }

    /// Notes whether the relay is connected to Redis.
    pub fn set_redis_up(&self, up: bool) {
        self.0.redis_up.set(i64::from(up));
    }

    /// The text exposition, with the outbox backlog as measured now.
    pub fn render(&self, backlog: i64) -> String {
        self.0.backlog.set(backlog);
        let mut text = String::new();
        encode(&mut text, &self.0.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_calls_latency_and_backlog() {
        let metrics = Metrics::default();
        metrics.observe("get_record", "ok", Duration::from_micros(40));
        metrics.observe("get_record", "not_found", Duration::from_micros(30));
        metrics.events_published(3);
        let text = metrics.render(7);
        assert!(text.contains(r#"isms_operation_calls_total{operation="get_record",outcome="ok"} 1"#), "{text}");
        assert!(text.contains(r#"isms_operation_calls_total{operation="get_record",outcome="not_found"} 1"#));
        assert!(text.contains(r#"isms_operation_duration_seconds_count{operation="get_record"} 2"#), "{text}");
        assert!(text.contains("isms_outbox_backlog 7"), "{text}");
        assert!(text.contains("isms_events_published_total 3"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
