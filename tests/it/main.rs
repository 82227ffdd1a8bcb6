//! warmstart's integration tests: one test binary (one link, one process per `cargo test`),
//! one module per concern. Every module drives the built `warmstart` binary through
//! `common::Project`, a temporary project with small, deterministic generated data.
//!
//! | module | what it holds to |
//! |---|---|
//! | `bad_specs` | every spec mistake exits 2 naming file, line and field |
//! | `bad_data` | broken datasets and model folders: a clear error, never a panic, nothing lost |
//! | `caching` | keys, freshness and stale reasons; byte-identical reruns |
//! | `continued_pretraining` | `pretrain init:` continues another pretrain stage, or says why it cannot |
//! | `quickstart` | the README's main job: results near the documented figures, on any thread count |
//! | `variants` | variants, matrix and repeats share stages and compare |
//! | `report` | the report's files, and its HTML rendered by a headless browser |
//! | `maintenance` | verify, gc, and SIGKILLed runs that leave nothing half-trusted |
//! | `resume` | a killed training stage resumes from its checkpoint and commits the uninterrupted bytes |
//! | `python_interop` | an exported model loads in Python's safetensors/tokenizers |
//! | `slurm` | `run --executor slurm` against a real single-node Slurm |

mod common;

mod bad_data;
mod bad_specs;
mod caching;
mod continued_pretraining;
mod fuzz;
mod maintenance;
mod parquet;
mod python_interop;
mod quickstart;
mod report;
mod resume;
mod slurm;
mod variants;
