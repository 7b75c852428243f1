//! Is a listing page whole? A body cut short can still be read by a lenient
//! parser (the XML deserialisers stop at the end of input and keep what they had),
//! so the keys of a page are used only after the page parsed completely as one
//! document: every element closed, the root closed last, nothing after it.

use quick_xml::events::Event;

/// Checks that `body` is one well-formed XML document whose root is `root` and
/// which holds each of `required` as a direct child of the root (a page whose
/// continuation element is missing would otherwise read as the last page).
pub fn whole_xml(body: &[u8], root: &str, required: &[&str]) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut closed_root = false;
    let mut found = vec![false; required.len()];
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("not well-formed XML at byte {}: {e}", reader.buffer_position()))?;
        let mut note_child = |name: &[u8]| {
            if depth == 1 {
                for (i, want) in required.iter().enumerate() {
                    if name == want.as_bytes() {
                        found[i] = true;
                    }
                }
            }
        };
        match event {
            Event::Start(e) => {
                if closed_root {
                    return Err("content after the document's root element".to_owned());
                }
                if depth == 0 {
                    if e.name().as_ref() != root.as_bytes() {
                        return Err(format!("the document is not a <{root}>"));
                    }
                    seen_root = true;
                }
                note_child(e.name().as_ref());
                depth += 1;
            }
            Event::Empty(e) => {
                if depth == 0 {
                    if e.name().as_ref() != root.as_bytes() || closed_root {
                        return Err(format!("the document is not one <{root}>"));
                    }
                    seen_root = true;
                    closed_root = true;
                }
                note_child(e.name().as_ref());
            }
            Event::End(_) => {
                depth -= 1;
                if depth == 0 {
                    closed_root = true;
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(format!("no <{root}> element"));
    }
    if !closed_root || depth != 0 {
        return Err(format!("the document ends before </{root}> (cut short)"));
    }
    if let Some(missing) = required.iter().zip(&found).find(|(_, f)| !**f).map(|(r, _)| r) {
        return Err(format!("<{missing}> is missing"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?><R><Contents><Key>tricky/a-z/y.jpg</Key></Contents><Contents><Key>b</Key></Contents><IsTruncated>true</IsTruncated></R>"#;

    #[test]
    fn a_whole_page_passes_and_every_cut_of_it_fails() {
        assert_eq!(whole_xml(PAGE.as_bytes(), "R", &["IsTruncated"]), Ok(()));
        for cut in 0..PAGE.len() {
            assert!(
                whole_xml(&PAGE.as_bytes()[..cut], "R", &["IsTruncated"]).is_err(),
                "a page cut at byte {cut} passed"
            );
        }
    }

    #[test]
    fn wrong_roots_missing_children_and_trailing_content_fail() {
        assert!(whole_xml(b"<Error><Code>x</Code></Error>", "R", &[]).is_err());
        assert!(whole_xml(b"<R><Contents/></R>", "R", &["IsTruncated"]).is_err());
        assert!(whole_xml(b"<R><IsTruncated>false</IsTruncated></R><R>", "R", &[]).is_err());
        assert!(whole_xml(b"<R><a></b></R>", "R", &[]).is_err());
        assert_eq!(whole_xml(b"<R><Blobs/><NextMarker/></R>", "R", &["NextMarker"]), Ok(()));
        // A required name deeper down does not count.
        assert!(whole_xml(b"<R><Blobs><NextMarker/></Blobs></R>", "R", &["NextMarker"]).is_err());
    }
}
