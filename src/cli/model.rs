//! `warmstart predict`, and finding the trained model a stage name points at (shared with
//! `export`).

use super::*;

/// The store folder of a trained model stage of a spec; fails if it is not trained yet.
/// A trained model stage, found, planned and verified: what predict and export read.
pub(super) struct Trained {
    pub(super) study: Study,
    pub(super) plan: plan::Plan,
    pub(super) ws: Workspace,
    /// `stage@variant`.
    pub(super) name: String,
    /// The verified `files/` folder of its entry.
    pub(super) dir: PathBuf,
}

pub(super) fn trained_model_dir(
    workspace: &Path,
    spec_path: &Path,
    stage: &str,
    sets: &[String],
) -> Result<PathBuf, Failure> {
    trained_model(workspace, spec_path, stage, sets).map(|t| t.dir)
}

pub(super) fn trained_model(
    workspace: &Path,
    spec_path: &Path,
    stage: &str,
    sets: &[String],
) -> Result<Trained, Failure> {
    let study = crate::pipeline::load(spec_path, sets)?;
    let Some((_, s)) = study.find(stage) else {
        let names: Vec<String> = study
            .variants
            .iter()
            .flat_map(|v| v.stages.iter().map(|s| Study::display(v, &s.name)))
            .collect();
        return Err(Failure::Usage(format!(
            "no stage `{stage}` in {} (stages: {})",
            spec_path.display(),
            names.join(", ")
        )));
    };
    if s.kind.produces != crate::stages::Product::Classifier {
        return Err(Failure::Usage(format!(
            "stage `{stage}` is a `{}` stage; predict and export need a finetune or feature-extract stage",
            s.kind.name
        )));
    }
    let ws = Workspace::open(workspace)?;
    let plan = plan::plan(&study, &ws)?;
    let (spec, s) = study.find(stage).expect("found above");
    let name = Study::display(spec, &s.name);
    let p = plan.find(&name).expect("stage planned");
    if !p.fresh {
        return Err(Failure::Failed(format!(
            "stage `{stage}` has no trained model for this spec yet ({}); run `warmstart run {}` first",
            crate::fingerprint::sentences(&p.reasons),
            spec_path.display()
        )));
    }
    let dir = ws.store.verified_files(&p.key).map_err(|e| {
        Failure::Failed(format!(
            "{e:#}; run `warmstart run {}` to recompute it",
            spec_path.display()
        ))
    })?;
    Ok(Trained {
        study,
        plan,
        ws,
        name,
        dir,
    })
}

pub(super) fn predict(
    workspace: &Path,
    args: Vec<String>,
    model: Option<PathBuf>,
    input: Option<PathBuf>,
    format: OutFormat,
    sets: &[String],
) -> Result<i32, Failure> {
    let (dir, mut texts) = match model {
        Some(d) => (d, args),
        None => {
            if args.len() < 2 {
                return Err(Failure::Usage(
                    "predict needs SPEC STAGE [TEXT...] or --model DIR [TEXT...]".into(),
                ));
            }
            let dir = trained_model_dir(workspace, Path::new(&args[0]), &args[1], sets)?;
            (dir, args[2..].to_vec())
        }
    };
    if let Some(f) = input {
        let fmt = crate::dataset::Format::from_extension(&f.to_string_lossy()).unwrap_or(crate::dataset::Format::Txt);
        let ds = crate::dataset::DatasetSpec {
            name: "input".into(),
            path: f.clone(),
            rel_path: f.to_string_lossy().into(),
            format: fmt,
            text: "text".into(),
            label: None,
        };
        texts.extend(ds.read().map_err(|e| Failure::Usage(format!("{e}")))?.texts);
    }
    if texts.is_empty() {
        return Err(Failure::Usage(
            "no texts to classify: give them as arguments or with --input FILE".into(),
        ));
    }
    let p = crate::predict::Predictor::from_dir(&dir)?;
    let preds = p.predict(&texts)?;
    match format {
        OutFormat::Json => {
            let v: Vec<_> = preds
                .iter()
                .map(|r| json!({"text": r.text, "label": r.label, "probabilities": r.probabilities.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)?);
        }
        OutFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            let mut header = vec!["text".to_string(), "label".to_string()];
            header.extend(p.labels().iter().map(|l| format!("p_{l}")));
            w.write_record(&header).map_err(anyhow::Error::from)?;
            for r in &preds {
                let mut row = vec![r.text.clone(), r.label.clone()];
                row.extend(r.probabilities.iter().map(|(_, v)| format!("{v:.4}")));
                w.write_record(&row).map_err(anyhow::Error::from)?;
            }
            w.flush().map_err(anyhow::Error::from)?;
        }
    }
    Ok(0)
}
