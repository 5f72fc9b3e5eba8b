//! The parts of Python's `ftfy.fix_text` that open_clip's text cleaning relies on.
//!
//! open_clip cleans every query with `ftfy.fix_text`, then `html.unescape` twice, then `strip()`
//! ([`basic_clean`]). ftfy has no Rust port, so this module reimplements the fixes that change real
//! queries, in ftfy's order, repeated until the text stops changing as ftfy does: HTML entities (only
//! `&...;` forms, and only when the text holds no `<`), mojibake of UTF-8 read as Latin-1 or
//! Windows-1252 (`niÃ±a` → `niña`, `â€™` → `’`), C1 controls read as Windows-1252, Latin ligatures
//! (`ﬁ` → `fi`), full-width forms and U+3000 (`ＡＢＣ` → `ABC`), curly quotes, line breaks (`\r\n`,
//! U+2028 → `\n`), terminal escapes and control characters, then NFC.
//!
//! What is left out: ftfy's statistical badness score. Mojibake is repaired only where the text holds
//! a complete UTF-8 sequence spelled in Latin-1/Windows-1252 characters with a lead that real text
//! almost never has there (`Â`/`Ã` + one continuation, `â` + two, `ð` + three); other mixed-script
//! mojibake stays as it is. Invariant: plain text (letters, accents, punctuation, emoji) passes
//! through unchanged apart from the documented fixes.

use unicode_normalization::UnicodeNormalization;

/// Python's `str.isspace()`: Unicode white space plus the ASCII separators U+001C..U+001F.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
pub fn py_strip(text: &str) -> &str {
    text.trim_matches(is_py_space)
}

/// open_clip's `basic_clean`: `ftfy.fix_text`, `html.unescape` twice, strip.
pub fn basic_clean(text: &str) -> String {
    let fixed = fix_text(text);
    let once = htmlize::unescape(fixed.as_str()).into_owned();
    let twice = htmlize::unescape(once.as_str()).into_owned();
    py_strip(&twice).to_string()
}

/// `ftfy.fix_text` with its default settings, as far as this module implements it.
pub fn fix_text(text: &str) -> String {
    let unescape = !text.contains('<');
    let mut text = text.to_string();
    // ftfy repeats its fixes until nothing changes; a bound keeps a pathological input finite.
    for _ in 0..16 {
        let before = text.clone();
        if unescape {
            text = unescape_entities(&text);
        }
        text = fix_mojibake(&text);
        text = text.chars().map(fix_c1).collect();
        text = text.chars().flat_map(|c| expand(c).chars().collect::<Vec<_>>()).collect();
        text = fix_line_breaks(&text);
        text = remove_terminal_escapes(&text);
        text.retain(|c| !is_control(c));
        text = text.nfc().collect();
        if text == before {
            break;
        }
    }
    text
}

/// ftfy's `unescape_html`: only complete entities ending in `;` (`&amp;`, `&#241;`, `&#x1F457;`).
fn unescape_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let body = tail[1..].strip_prefix('#').map_or(&tail[1..], |b| b);
        let name_len = body.bytes().take_while(u8::is_ascii_alphanumeric).count();
        let hash = usize::from(tail[1..].starts_with('#'));
        let end = 1 + hash + name_len;
        if (1..=24).contains(&name_len) && tail[end..].starts_with(';') {
            let entity = &tail[..=end];
            let decoded = htmlize::unescape(entity);
            // An unknown name stays as written; a numeric reference always decodes.
            out.push_str(&decoded);
            rest = &tail[end + 1..];
        } else {
            out.push('&');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The Windows-1252 characters at bytes 0x80..0x9F (`None` where 1252 leaves the byte undefined).
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

/// The byte `c` was decoded from, reading bytes as "sloppy" Windows-1252 (Latin-1 where 1252 has a gap).
fn sloppy_byte(c: char) -> Option<u8> {
    let code = c as u32;
    if code < 0x80 || (0xA0..=0xFF).contains(&code) {
        return Some(code as u8);
    }
    if (0x80..0xA0).contains(&code) {
        // A C1 control stands for itself only where Windows-1252 has no character.
        return CP1252_HIGH[(code - 0x80) as usize].is_none().then_some(code as u8);
    }
    CP1252_HIGH.iter().position(|&h| h == Some(c)).map(|i| 0x80 + i as u8)
}

/// Repairs UTF-8 sequences that were decoded as Latin-1 or Windows-1252 (see the module docs).
fn fix_mojibake(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let continuations = match chars[i] {
            'Â' | 'Ã' => 1,
            'â' => 2,
            'ð' => 3,
            _ => 0,
        };
        if continuations > 0 && i + continuations < chars.len() {
            let bytes: Option<Vec<u8>> = chars[i..=i + continuations].iter().map(|&c| sloppy_byte(c)).collect();
            let valid = bytes.as_deref().is_some_and(|b| b[1..].iter().all(|&x| (0x80..0xC0).contains(&x)));
            if let (true, Some(bytes)) = (valid, bytes) {
                if let Ok(decoded) = std::str::from_utf8(&bytes) {
                    out.push_str(decoded);
                    i += continuations + 1;
                    continue;
                }
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// ftfy's `fix_c1_controls`: a C1 control that Windows-1252 defines becomes that character.
fn fix_c1(c: char) -> char {
    let code = c as u32;
    if (0x80..0xA0).contains(&code) {
        CP1252_HIGH[(code - 0x80) as usize].unwrap_or(c)
    } else {
        c
    }
}

/// Ligatures, full-width forms and curly quotes, each as ftfy rewrites it.
fn expand(c: char) -> String {
    let ligature = match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => "",
    };
    if !ligature.is_empty() {
        return ligature.to_string();
    }
    match c {
        '\u{3000}' => " ".to_string(),
        '\u{FF01}'..='\u{FFEF}' => c.to_string().nfkc().collect(),
        '\u{02BC}' | '\u{2018}'..='\u{201B}' => "'".to_string(),
        '\u{201C}'..='\u{201F}' => "\"".to_string(),
        _ => c.to_string(),
    }
}

/// ftfy's `fix_line_breaks`: CR LF, CR, U+2028, U+2029 and U+0085 become `\n`.
fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n").replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// ftfy's `remove_terminal_escapes`: ANSI sequences such as `ESC[31m`.
fn remove_terminal_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("\u{1b}[") {
        out.push_str(&rest[..start]);
        let tail = &rest[start + 2..];
        let params = tail.bytes().take_while(|b| b.is_ascii_digit() || *b == b';').count();
        match tail[params..].chars().next() {
            Some(c) if c.is_ascii_alphabetic() => rest = &tail[params + 1..],
            _ => {
                out.push_str("\u{1b}[");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The characters ftfy's `remove_control_chars` deletes (tab, LF, FF and CR stay).
fn is_control(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0x206A..=0x206F | 0xFEFF | 0xFFF9..=0xFFFC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_what_open_clip_queries_meet() {
        for (input, expected) in [
            ("niÃ±a con vestido", "niña con vestido"),
            ("itâ€™s", "it's"),
            ("ðŸ‘— rojo", "👗 rojo"),
            ("ni&#241;a", "niña"),
            ("camisa &amp;amp; corbata", "camisa & corbata"),
            ("<b>a&amp;b</b>", "<b>a&b</b>"),
            ("Tom &amp Jerry", "Tom & Jerry"),
            ("ﬁn ﬀ", "fin ff"),
            ("ＡＢＣ\u{3000}x", "ABC x"),
            ("“a” ‘b’", "\"a\" 'b'"),
            ("a\u{2028}b\r\nc", "a\nb\nc"),
            ("a\u{b}b\u{1c}c\u{ad}", "abc\u{ad}"),
            ("\u{1b}[31mrojo", "rojo"),
            ("e\u{301}", "é"),
            ("«camisa» — blanca… Ⅻ ½", "«camisa» — blanca… Ⅻ ½"),
            ("àèìòù ÑANDÚ", "àèìòù ÑANDÚ"),
        ] {
            assert_eq!(basic_clean(input), expected, "{input:?}");
        }
    }
}
