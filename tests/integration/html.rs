//! The HTML report as a user meets it: `fitcheck run --html` on a copy of the toy suite with awkward
//! file names and a broken image, and `fitcheck compare --html` on the bundled lookbook, opened in
//! headless Chromium. The browser checks need a Chromium or Chrome on the PATH; without one the test
//! says so, and fails when `CI` is set, so the check cannot silently vanish there.

use std::path::{Path, PathBuf};
use std::process::Command;

use fitcheck::document::Document;
use fitcheck::metrics::Class;

use crate::common::toy_suite;

/// Runs the fitcheck binary in `dir`; returns its exit status and stdout + stderr.
fn fitcheck(dir: &Path, cache: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fitcheck"))
        .current_dir(dir)
        .args(args)
        .env_remove("FITCHECK_MODEL")
        .env_remove("FITCHECK_REVISION")
        .env("FITCHECK_CACHE", cache)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// The item whose id holds a quote, `<`, `&`, spaces and a non-ASCII letter.
const ODD_ID: &str = "jean/wide \"negro\" <ñ> & co";

#[test]
fn toy_report_escapes_names_reuses_thumbnails_and_keeps_other_files() {
    let dir = toy_suite();
    let d = dir.path();
    std::fs::rename(d.join("catalog/jean/wide-negro.png"), d.join(format!("catalog/{ODD_ID}.png"))).unwrap();
    let manifest = std::fs::read_to_string(d.join("catalog/manifest.toml")).unwrap();
    std::fs::write(d.join("catalog/manifest.toml"), manifest.replace("\"jean/wide-negro\"", &format!("'{ODD_ID}'")))
        .unwrap();
    // A report directory that already holds someone's files.
    std::fs::create_dir_all(d.join("report/thumbs")).unwrap();
    std::fs::write(d.join("report/notes.txt"), "mine").unwrap();
    std::fs::write(d.join("report/thumbs/keep.txt"), "mine too").unwrap();
    let cache = d.join("cache");

    let (code, out) = fitcheck(d, &cache, &["run", "--suite", "cases", "--html", "report", "--json", "run.json"]);
    assert!(code == 0 || code == 1, "{out}");
    // 8 catalog items, every one in some case's top 10.
    assert!(out.ends_with("wrote report/index.html with 8 thumbnails (8 made, 0 from the cache)\n"), "{out}");
    assert_eq!(names_in(&d.join("report")), ["index.html", "notes.txt", "thumbs"]);
    assert_eq!(std::fs::read_to_string(d.join("report/notes.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_to_string(d.join("report/thumbs/keep.txt")).unwrap(), "mine too");
    let thumbs = names_in(&d.join("report/thumbs"));
    assert_eq!(thumbs.len(), 9, "{thumbs:?}");
    assert!(thumbs.iter().filter(|n| *n != "keep.txt").all(|n| n.ends_with("-drop-t1.jpg") && n.len() == 64 + 12));

    let html = std::fs::read_to_string(d.join("report/index.html")).unwrap();
    // The odd id: escaped in attributes and text, never raw markup; its link percent-encoded
    // (space %20, " %22, < %3C, ñ %C3%B1, > %3E, & %26).
    assert!(!html.contains("<ñ>"));
    assert_eq!(html.matches("data-item=\"jean/wide &quot;negro&quot; &lt;ñ&gt; &amp; co\"").count(), 2, "{html}");
    assert!(html.contains("<span class=\"id\">jean/wide \"negro\" &lt;ñ&gt; &amp; co</span>"));
    let href = "../catalog/jean/wide%20%22negro%22%20%3C%C3%B1%3E%20%26%20co.png";
    assert!(html.contains(&format!("<a href=\"{href}\">")), "{html}");
    // Two cases, each showing all 8 items.
    assert_eq!(html.matches("<section class=\"case").count(), 2);
    assert_eq!(html.matches("<img class=\"thumb\"").count(), 16);
    let links: Vec<&str> =
        html.split("<a href=\"").skip(1).filter_map(|s| s.split('"').next()).filter(|l| l.starts_with("..")).collect();
    assert_eq!(links.len(), 16);
    for link in links {
        let decoded = percent_decode(link);
        assert!(d.join("report").join(&decoded).is_file(), "link {link} ({decoded}) does not reach its image");
    }

    // Rendered again: everything comes from the thumbnails already made.
    let (_, out) = fitcheck(d, &cache, &["run", "--suite", "cases", "--html", "report"]);
    assert!(out.ends_with("with 8 thumbnails (0 made, 8 from the cache)\n"), "{out}");
    // Elsewhere, with the same cache: copied, not made.
    let (_, out) = fitcheck(d, &cache, &["run", "--suite", "cases", "--html", "other"]);
    assert!(out.ends_with("wrote other/index.html with 8 thumbnails (0 made, 8 from the cache)\n"), "{out}");
    assert_eq!(names_in(&d.join("other/thumbs")).len(), 8);

    // From the results file, after an image went missing and another got corrupted: placeholders
    // naming the file and the reason, and the report is still written.
    let mut doc: Document = serde_json::from_str(&std::fs::read_to_string(d.join("run.json")).unwrap()).unwrap();
    doc.runs[0].catalog.root = d.join("catalog").to_string_lossy().into_owned();
    std::fs::remove_file(d.join("catalog/remera/roja.png")).unwrap();
    std::fs::write(d.join("catalog/vestido/rojo.jpg"), b"not a jpeg").unwrap();
    let written = fitcheck::html::write(&doc, &d.join("later"), Some(&cache)).unwrap();
    assert_eq!((written.thumbs.used, written.thumbs.made, written.thumbs.missing), (6, 0, 2));
    assert!(written.line().ends_with("; 2 images could not be shown (see the report)"), "{}", written.line());
    let html = std::fs::read_to_string(d.join("later/index.html")).unwrap();
    let root = d.join("catalog");
    let missing = format!(
        "<span class=\"thumb missing\" data-item=\"remera/roja\"><b>no image</b> {}: cannot read image: ",
        root.join("remera/roja.png").display()
    );
    assert_eq!(html.matches(&missing).count(), 2, "{html}");
    let corrupt = format!(
        "<span class=\"thumb missing\" data-item=\"vestido/rojo\"><b>no image</b> {}: cannot read image: ",
        root.join("vestido/rojo.jpg").display()
    );
    assert_eq!(html.matches(&corrupt).count(), 2, "{html}");
    assert_eq!(html.matches("<img class=\"thumb\"").count(), 12);
}

#[test]
fn a_report_directory_that_is_a_file_is_an_error_naming_it() {
    let dir = toy_suite();
    let d = dir.path();
    std::fs::write(d.join("report"), "a file").unwrap();
    let (code, out) = fitcheck(d, &d.join("cache"), &["run", "--suite", "cases", "--html", "report"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(out, "error: report: not a directory: name a directory for the HTML report\n");
    assert_eq!(std::fs::read_to_string(d.join("report")).unwrap(), "a file");
}

/// Decodes `%XX` escapes (the links above are ASCII after encoding).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Chromium or Chrome, if one is installed.
fn browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Runs the browser headless on `page` with `args` (`--dump-dom`, `--screenshot=...`); returns stdout.
fn chromium(browser: &Path, page: &Path, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{} failed: {}", browser.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of attribute `name` in each element of `dom` that starts with `open`.
fn attrs<'a>(dom: &'a str, open: &str, name: &str) -> Vec<&'a str> {
    dom.split(open)
        .skip(1)
        .map(|el| {
            let tag = &el[..el.find('>').unwrap_or(el.len())];
            let at = tag.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("no {name} in <{open}{tag}>"));
            let rest = &tag[at + name.len() + 3..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

#[test]
fn lookbook_comparison_renders_in_a_real_browser() {
    let Some(browser) = browser() else {
        let msg = "no chromium, chromium-browser or google-chrome on the PATH: the HTML report was not checked in a browser (apt-get install chromium)";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("skipped: {msg}");
        return;
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("report");
    let json = tmp.path().join("cmp.json");
    let (code, out) = fitcheck(
        repo,
        &tmp.path().join("cache"),
        &[
            "compare",
            "lookbook/checkpoints/checkpoint-a",
            "--html",
            report.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "checkpoint-a regresses against checkpoint-b: {out}");
    let doc: Document = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let (base, cand) = (&doc.runs[0], &doc.runs[1]);

    // What the results say the page must hold, worked out from the JSON alone.
    let shown = |run: &fitcheck::result::RunResult| -> usize {
        run.cases
            .iter()
            .filter_map(|c| {
                let r = c.ranking.as_ref()?;
                let top = c.snapshot_top?.min(r.top.len());
                Some(top + r.classified.iter().filter(|i| i.rank > top && i.class == Class::Expected).count())
            })
            .sum()
    };
    let images = shown(base) + shown(cand);
    let attention: std::collections::BTreeSet<&str> = doc.comparisons[0]
        .cases
        .iter()
        .filter(|c| c.change == fitcheck::compare::Change::Regression || c.cand.fails_suite())
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(attention.len(), 15, "the 15 regressions of the Python evaluation (scripts/lookbook/evaluate.py)");

    let dom = chromium(&browser, &report.join("index.html"), &["--dump-dom"]);
    let cases = attrs(&dom, "<section class=\"case", "data-case");
    assert_eq!(cases.len(), base.cases.len(), "one section per case");
    let first: std::collections::BTreeSet<&str> = cases[..attention.len()].iter().copied().collect();
    assert_eq!(first, attention, "regressed and failing cases come first");
    let widths = attrs(&dom, "<img class=\"thumb\"", "data-natural-width");
    assert_eq!(widths.len(), images, "every shown item has its image");
    let declared = attrs(&dom, "<img class=\"thumb\"", "width");
    for (natural, declared) in widths.iter().zip(&declared) {
        assert_eq!(natural, declared, "an image did not decode at its size");
        assert!(natural.parse::<u32>().unwrap() > 0);
    }
    assert!(!dom.contains("thumb missing"));

    // The screenshot shows the thumbnails: hundreds of JPEG colours, where text, frames and plots
    // alone give a few thousand at most (measured: about 3,100 with the thumbnails removed, 16,900
    // with them).
    let shot = tmp.path().join("shot.png");
    chromium(
        &browser,
        &report.join("index.html"),
        &[&format!("--screenshot={}", shot.display()), "--window-size=1280,3000"],
    );
    let png = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (1280, 3000));
    let colours: std::collections::HashSet<[u8; 3]> = png.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 8000, "the screenshot shows {} colours: thumbnails missing?", colours.len());

    let size: u64 =
        walkdir::WalkDir::new(&report).into_iter().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    assert!(size < 3_000_000, "the report takes {size} bytes");
}
