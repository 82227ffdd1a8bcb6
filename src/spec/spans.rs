//! Where every field is in the file. serde_yaml forgets positions once a `Value` exists, so the
//! text is read a second time by yaml-rust2's event parser into a [`SpanIndex`].

use std::collections::HashMap;

/// Field path → (line, column), both 1-based, built from the YAML event stream.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    spans: HashMap<String, (usize, usize)>,
}

impl SpanIndex {
    /// Builds the index; a text that does not parse yields an empty index (serde_yaml reports
    /// the syntax error with its own location).
    pub fn build(text: &str) -> SpanIndex {
        let mut b = SpanBuilder::default();
        let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
        let _ = parser.load(&mut b, false);
        SpanIndex { spans: b.spans }
    }

    /// The position of `field`, or of its nearest ancestor that is in the file.
    pub fn find(&self, field: &str) -> Option<(usize, usize)> {
        let mut f = field.to_string();
        loop {
            if let Some(p) = self.spans.get(&f) {
                return Some(*p);
            }
            let cut = f.rfind(['.', '['])?;
            f.truncate(cut);
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct SpanBuilder {
    stack: Vec<Frame>,
    spans: HashMap<String, (usize, usize)>,
}

impl SpanBuilder {
    /// Path of the value about to be read in the current container.
    fn child_path(&self) -> Option<String> {
        match self.stack.last()? {
            Frame::Map { path, key: Some(k) } => Some(join(path, k)),
            Frame::Map { key: None, .. } => None,
            Frame::Seq { path, index } => Some(format!("{path}[{index}]")),
        }
    }

    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl yaml_rust2::parser::MarkedEventReceiver for SpanBuilder {
    fn on_event(&mut self, ev: yaml_rust2::parser::Event, mark: yaml_rust2::scanner::Marker) {
        use yaml_rust2::parser::Event;
        let pos = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(s, ..) => {
                if let Some(Frame::Map { path, key: key @ None }) = self.stack.last_mut() {
                    let p = join(path, &s);
                    *key = Some(s);
                    self.spans.entry(p).or_insert(pos);
                } else {
                    if let Some(p) = self.child_path() {
                        self.spans.entry(p).or_insert(pos);
                    }
                    self.value_done();
                }
            }
            Event::Alias(_) => self.value_done(),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = match self.stack.last() {
                    None => String::new(),
                    Some(_) => self.child_path().unwrap_or_default(),
                };
                if matches!(self.stack.last(), Some(Frame::Seq { .. })) {
                    self.spans.entry(path.clone()).or_insert(pos);
                }
                if matches!(ev, Event::MappingStart(..)) {
                    self.stack.push(Frame::Map { path, key: None });
                } else {
                    self.stack.push(Frame::Seq { path, index: 0 });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}
