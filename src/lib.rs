//! warmstart: declarative, cached transfer-learning pipelines for text classifiers.
//!
//! See ARCHITECTURE.md for the map. In one line: [`spec`] reads the YAML, [`graph`] checks the
//! DAG, [`plan`] computes content keys and freshness, [`executor`] runs what is stale through
//! the [`stages`] registry, and [`store`] keeps every artefact, complete or not at all.

pub mod alloc;
pub mod cli;
pub mod dataset;
pub mod determinism;
pub mod executor;
pub mod graph;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod predict;
pub mod progress;
pub mod report;
pub mod seqfile;
pub mod spec;
pub mod stages;
pub mod store;
pub mod workspace;
