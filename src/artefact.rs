//! What artefacts promise to their readers, independent of the stage that writes them: the
//! special token ids every tokenizer has, and how a row of ids is cut and padded (`Shape`,
//! recorded in a pad artefact and in every model's `model.json`).
//!
//! Why a module of its own: the model (`model/`), `predict` and `report` read these formats,
//! and they must not depend on the stages that produce them (ARCHITECTURE.md, "model/ never
//! imports stages/"; checked by a test in `lib.rs`).

use serde::{Deserialize, Serialize};

/// The special tokens, in id order.
pub const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
pub const PAD_ID: u32 = 0;
pub const UNK_ID: u32 = 1;
pub const CLS_ID: u32 = 2;
pub const MASK_ID: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Pre,
    Post,
}

/// The longest padded row a pad stage writes (and a model folder may declare).
pub const MAX_LEN: usize = 8192;

/// How one row becomes `max_len` ids: the part of a pad stage that `predict` reuses on new text.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Shape {
    pub max_len: usize,
    pub add_cls: bool,
    pub padding: Side,
    pub truncating: Side,
}

impl Shape {
    /// Writes `row` into `ids`/`mask` (both `max_len` long, pre-filled with pad id / 0);
    /// returns whether the row was truncated.
    pub fn pad_into(&self, row: &[u32], cls_id: u32, ids: &mut [u32], mask: &mut [u8]) -> bool {
        let body = self.max_len - usize::from(self.add_cls);
        let was_cut = row.len() > body;
        let kept = match (was_cut, self.truncating) {
            (false, _) => row,
            (true, Side::Post) => &row[..body],
            (true, Side::Pre) => &row[row.len() - body..],
        };
        let n = kept.len() + usize::from(self.add_cls);
        let start = match self.padding {
            Side::Post => 0,
            Side::Pre => self.max_len - n,
        };
        let mut at = start;
        if self.add_cls {
            ids[at] = cls_id;
            at += 1;
        }
        ids[at..at + kept.len()].copy_from_slice(kept);
        mask[start..start + n].fill(1);
        was_cut
    }
}
