//! Query text → token ids, exactly as the Python side of each checkpoint layout does it.
//!
//! Two steps: a cleaning that depends on the layout ([`Cleaning`]), then the checkpoint's own
//! `tokenizer.json` through the `tokenizers` crate, truncated to the context length (the end-of-text
//! token that the post-processor appends is kept) and right-padded to exactly the context length with
//! the checkpoint's pad id. SigLIP's text tower pools the last position and uses no attention mask, so
//! the padding is part of the model's input: an unpadded sequence gives a different embedding.
//! Pair mode also needs the other padding the Python side offers, to the longest text of a batch
//! (transformers' `padding=True`): [`TextPipeline::encode_padded_to_longest`] truncates the same way and
//! pads each batch with the same pad id, only to a shorter length.
//!
//! The pad token is read from the checkpoint (`special_tokens_map.json`, then `tokenizer_config.json`,
//! then the padding block of `tokenizer.json`) and must be in the tokenizer's vocabulary.

use std::path::PathBuf;

use serde_json::Value;
use tokenizers::{PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::config::read_json;
use super::ftfy::{basic_clean, is_py_space, py_strip};
use crate::error::{Error, Result};

/// ASCII punctuation, Python's `string.punctuation`.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// How a query is cleaned before it reaches `tokenizer.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleaning {
    /// open_clip `canonicalize`: `basic_clean`, `_` → space, drop ASCII punctuation, lower-case,
    /// collapse white space (Marqo's processor does the same).
    Canonicalize,
    /// open_clip `whitespace`: `basic_clean`, collapse white space.
    Whitespace,
    /// open_clip `lower`: `basic_clean`, collapse white space, lower-case.
    Lower,
    /// transformers' `SiglipTokenizer`: lower-case (when `do_lower_case`), drop ASCII punctuation
    /// (`_` included), collapse white space; no ftfy and no HTML unescaping.
    Siglip { lower: bool },
    /// Nothing before `tokenizer.json`, whose own normaliser does the cleaning (transformers' CLIP
    /// tokenizer: NFC, white space runs to one space, lower case).
    TokenizerOnly,
}

impl Cleaning {
    /// The open_clip cleaning named `key` in `tokenizer_kwargs.clean`.
    pub fn open_clip(key: &str) -> Option<Cleaning> {
        match key {
            "canonicalize" => Some(Cleaning::Canonicalize),
            "whitespace" => Some(Cleaning::Whitespace),
            "lower" => Some(Cleaning::Lower),
            _ => None,
        }
    }

    /// The cleaning in words, for fingerprints.
    pub fn describe(self) -> &'static str {
        match self {
            Cleaning::Canonicalize => "open_clip canonicalize",
            Cleaning::Whitespace => "open_clip whitespace",
            Cleaning::Lower => "open_clip lower",
            Cleaning::Siglip { lower: true } => "siglip lower+punctuation",
            Cleaning::Siglip { lower: false } => "siglip punctuation",
            Cleaning::TokenizerOnly => "tokenizer.json only",
        }
    }

    /// Cleans `text`.
    pub fn apply(self, text: &str) -> String {
        match self {
            Cleaning::Canonicalize => {
                let text = basic_clean(text).replace('_', " ");
                let text: String = text.chars().filter(|c| !PUNCTUATION.contains(*c)).collect();
                collapse(&text.to_lowercase())
            }
            Cleaning::Whitespace => collapse(&basic_clean(text)),
            Cleaning::Lower => collapse(&basic_clean(text)).to_lowercase(),
            Cleaning::Siglip { lower } => {
                let text = if lower { text.to_lowercase() } else { text.to_string() };
                let text: String = text.chars().filter(|c| !PUNCTUATION.contains(*c)).collect();
                // `re.sub(r"\s+", " ", text).strip()` is the same as splitting and joining.
                collapse(&text)
            }
            Cleaning::TokenizerOnly => text.to_string(),
        }
    }
}

/// Punctuation in the sense of Unicode's `P*` categories, for the scripts a query is written in:
/// ASCII, Latin-1 (`¡ § « ¶ · » ¿`), General Punctuation (dashes, quotes, `…`), CJK and full-width
/// forms. The cleanings keep non-ASCII punctuation (`"¿?!"` cleans to `"¿"`), so a query made of
/// it alone is as empty as `""`. Symbols and emoji are not punctuation.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c, '¡' | '§' | '«' | '¶' | '·' | '»' | '¿' | '\u{37e}')
        || ('\u{2010}'..='\u{2027}').contains(&c)
        || ('\u{2030}'..='\u{205e}').contains(&c)
        || ('\u{3001}'..='\u{3003}').contains(&c)
        || ('\u{3008}'..='\u{3011}').contains(&c)
        || ('\u{3014}'..='\u{301f}').contains(&c)
        || ('\u{ff01}'..='\u{ff0f}').contains(&c)
        || ('\u{ff1a}'..='\u{ff20}').contains(&c)
        || ('\u{ff3b}'..='\u{ff40}').contains(&c)
        || ('\u{ff5b}'..='\u{ff65}').contains(&c)
}

/// `" ".join(text.split()).strip()` with Python's notion of white space.
fn collapse(text: &str) -> String {
    let words: Vec<&str> = text.split(is_py_space).filter(|w| !w.is_empty()).collect();
    py_strip(&words.join(" ")).to_string()
}

/// A checkpoint's tokenizer set up for fixed-length SigLIP input.
pub struct TextPipeline {
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation or padding, to count the tokens a text really has.
    counter: Tokenizer,
    path: PathBuf,
    pub cleaning: Cleaning,
    pub context: usize,
    pub pad_id: u32,
}

/// The tokenizer files of a checkpoint.
pub struct TokenizerFiles {
    pub tokenizer: PathBuf,
    pub special_tokens_map: Option<PathBuf>,
    pub tokenizer_config: Option<PathBuf>,
}

/// A special token as the JSON files spell it: a string or `{"content": ...}`.
fn token_name(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

impl TextPipeline {
    /// Loads `files.tokenizer` and finds the pad token; `context` comes from the weights.
    pub fn load(files: &TokenizerFiles, cleaning: Cleaning, context: usize) -> Result<TextPipeline> {
        let path = &files.tokenizer;
        let mut tokenizer =
            Tokenizer::from_file(path).map_err(|e| Error::file(path, format!("cannot load the tokenizer: {e}")))?;
        let mut sources: Vec<(PathBuf, Option<String>)> = Vec::new();
        for file in [&files.special_tokens_map, &files.tokenizer_config].into_iter().flatten() {
            sources.push((file.clone(), token_name(read_json(file)?.get("pad_token"))));
        }
        let stored = read_json(path)?;
        let from_padding = stored.get("padding").and_then(|p| p.get("pad_token")).and_then(Value::as_str);
        sources.push((path.clone(), from_padding.map(str::to_string)));
        let Some((source, pad)) = sources.into_iter().find_map(|(f, t)| t.map(|t| (f, t))) else {
            return Err(Error::file(
                path,
                "no pad token named by special_tokens_map.json, tokenizer_config.json or tokenizer.json: \
                 add \"pad_token\" to special_tokens_map.json",
            ));
        };
        let Some(pad_id) = tokenizer.token_to_id(&pad) else {
            return Err(Error::file(
                &source,
                format!("pad token '{pad}' is not in the vocabulary of {}", path.display()),
            ));
        };
        // A tokenizer.json may carry its own truncation or padding; the counter must have neither.
        let mut counter = tokenizer.clone();
        counter.with_truncation(None).map_err(|e| Error::file(path, format!("cannot unset truncation: {e}")))?;
        counter.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: context, ..Default::default() }))
            .map_err(|e| Error::file(path, format!("cannot set truncation: {e}")))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(context),
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id: 0,
            pad_token: pad,
        }));
        Ok(TextPipeline { tokenizer, counter, path: path.clone(), cleaning, context, pad_id })
    }

    /// Pads with `pad_id` instead of the pad token the files name (open_clip pads CLIP's input with
    /// zeros, whatever the tokenizer files say). `pad_id` must be in the vocabulary.
    pub fn with_pad_id(mut self, pad_id: u32) -> Result<TextPipeline> {
        let Some(pad) = self.tokenizer.id_to_token(pad_id) else {
            return Err(Error::file(&self.path, format!("pad id {pad_id} is not in the vocabulary")));
        };
        self.tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(self.context),
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id: 0,
            pad_token: pad,
        }));
        self.pad_id = pad_id;
        Ok(self)
    }

    fn tokenize(&self, tokenizer: &Tokenizer, text: &str) -> Result<tokenizers::Encoding> {
        let cleaned = self.cleaning.apply(text);
        tokenizer
            .encode(cleaned.as_str(), true)
            .map_err(|e| Error::file(&self.path, format!("cannot tokenize '{text}': {e}")))
    }

    /// Token ids for each text: cleaned, tokenised, truncated and padded to the context length.
    ///
    /// A text that cleans to nothing (only punctuation or white space, e.g. `"¿?!"` under open_clip's
    /// `canonicalize`) is refused: Python would embed a lone end-of-text token, which ranks every
    /// catalog by noise, so such a query is a mistake in the case, not something to measure.
    pub fn encode(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        for t in texts {
            let cleaned = self.cleaning.apply(t);
            if cleaned.chars().all(|c| is_punctuation(c) || is_py_space(c)) {
                let left = if cleaned.is_empty() { String::new() } else { format!(", only '{cleaned}' is left") };
                return Err(Error::file(
                    &self.path,
                    format!(
                        "the query '{t}' is empty after cleaning ({}{left}): there is nothing to embed; \
                         write the query with at least one word",
                        self.cleaning.describe()
                    ),
                ));
            }
        }
        self.encode_raw(texts)
    }

    /// [`TextPipeline::encode`] without the empty-query check: exactly what the Python tokenizer
    /// gives, `</s>` and padding for a text that cleans to nothing (for fidelity checks).
    pub fn encode_raw(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|t| {
                let ids = self.tokenize(&self.tokenizer, t)?.get_ids().to_vec();
                if ids.len() != self.context {
                    return Err(Error::file(
                        &self.path,
                        format!("'{t}' gave {} tokens instead of {}", ids.len(), self.context),
                    ));
                }
                Ok(ids)
            })
            .collect()
    }

    /// Token ids for each text, cleaned, tokenised and truncated exactly as [`TextPipeline::encode`]
    /// does, but not padded: each sequence ends with its end-of-text token.
    pub fn encode_unpadded(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|t| {
                let enc = self.tokenize(&self.tokenizer, t)?;
                // Padding is on the right, so the real tokens are the prefix the mask marks.
                let real = enc.get_attention_mask().iter().filter(|&&m| m == 1).count();
                Ok(enc.get_ids()[..real].to_vec())
            })
            .collect()
    }

    /// Token ids of one batch padded with the pad id to the batch's longest sequence (transformers'
    /// `padding=True`), each truncated to the context first.
    pub fn encode_padded_to_longest(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        let mut ids = self.encode_unpadded(texts)?;
        let longest = ids.iter().map(Vec::len).max().unwrap_or(0);
        for seq in &mut ids {
            seq.resize(longest, self.pad_id);
        }
        Ok(ids)
    }

    /// How many tokens each text has after cleaning and tokenisation, special tokens included, before
    /// truncation.
    pub fn token_counts(&self, texts: &[String]) -> Result<Vec<usize>> {
        texts.iter().map(|t| Ok(self.tokenize(&self.counter, t)?.len())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanings_differ_where_python_does() {
        let cases = [
            ("jean_wide_leg", "jean wide leg", "jeanwideleg"),
            ("Vestido, ROJO.", "vestido rojo", "vestido rojo"),
            ("ni&ntilde;a", "niña", "nintildea"),
            ("vestido\u{b}rojo", "vestidorojo", "vestido rojo"),
            ("vestido “largo”", "vestido largo", "vestido “largo”"),
            ("  \t ", "", ""),
        ];
        for (input, open_clip, siglip) in cases {
            assert_eq!(Cleaning::Canonicalize.apply(input), open_clip, "{input:?}");
            assert_eq!(Cleaning::Siglip { lower: true }.apply(input), siglip, "{input:?}");
        }
    }
}
