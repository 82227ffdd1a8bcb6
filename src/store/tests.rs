use super::*;

fn meta(key: &str) -> EntryMeta {
    EntryMeta {
        key: key.into(),
        kind: "t".into(),
        stage: "s".into(),
        pipeline: "p".into(),
        created_unix: 0,
        seconds: 0.0,
        summary: String::new(),
        metrics: None,
        files: BTreeMap::new(),
    }
}

#[test]
fn entry_is_visible_only_after_commit_and_verify_detects_corruption() {
    let ws = tempfile::tempdir().unwrap();
    let store = Store::open(ws.path()).unwrap();
    let p = store.begin().unwrap();
    fs::write(p.files().join("a.bin"), b"hello").unwrap();
    assert!(store.lookup("k1").is_none());
    store.commit(p, meta("k1")).unwrap();
    assert!(store.lookup("k1").is_some());
    store.verify("k1").unwrap();
    fs::write(store.files_dir("k1").join("a.bin"), b"hell").unwrap();
    assert!(store.verify("k1").unwrap_err().to_string().contains("checksum"));

    // An abandoned entry leaves nothing behind.
    let p = store.begin().unwrap();
    fs::write(p.files().join("b.bin"), b"x").unwrap();
    drop(p);
    assert_eq!(fs::read_dir(ws.path().join("tmp")).unwrap().count(), 0);
    assert_eq!(store.keys().unwrap(), vec!["k1".to_string()]);
}

/// A rewrite of the same size is caught through its stamp; a stamp that matches is trusted
/// (the bit-rot row of the module table), and `verify_full` still re-hashes.
#[test]
fn stamps_decide_what_is_rehashed() {
    let ws = tempfile::tempdir().unwrap();
    let store = Store::open(ws.path()).unwrap();
    let p = store.begin().unwrap();
    fs::write(p.files().join("a.bin"), b"hello").unwrap();
    store.commit(p, meta("k")).unwrap();
    assert!(
        store.entry_dir("k").join("stamps.json").is_file(),
        "commit records stamps"
    );
    store.verify("k").unwrap();
    let a = store.files_dir("k").join("a.bin");
    fs::write(&a, b"jello").unwrap();
    assert!(store.verify("k").unwrap_err().to_string().contains("checksum"));
    // Pretend the bytes changed without a write: the stamp matches, so it is trusted...
    let mut stamps = Stamps::new();
    stamps.insert("a.bin".into(), stamp_of(&a).unwrap());
    store.save_stamps("k", &stamps);
    store.verify("k").unwrap();
    // ...until a full verify, which re-hashes and finds it.
    assert!(store.verify_full("k").unwrap_err().to_string().contains("checksum"));
    // A garbled stamps file only costs a re-hash.
    fs::write(&a, b"hello").unwrap();
    fs::write(store.entry_dir("k").join("stamps.json"), b"{not json").unwrap();
    store.verify("k").unwrap();
}
