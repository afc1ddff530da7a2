//! One test per rule of the WHATWG "interpreting an event stream" algorithm, each named
//! after the rule it checks, plus the parser's own guarantees (limits, buffering, `finish`).

use super::*;

/// What the parser yields, one per item.
type Parsed = Result<Item, ParseError>;

/// Feeds `chunks` one by one, draining after each, then finishes the stream.
fn parse_chunks(parser: &mut Parser, chunks: &[&[u8]]) -> Vec<Parsed> {
    let mut items = Vec::new();
    for chunk in chunks {
        items.extend(parser.feed_iter(chunk));
    }
    parser.finish();
    items.extend(std::iter::from_fn(|| parser.next_item()));
    items
}

fn parse(input: &[u8]) -> Vec<Parsed> {
    parse_chunks(&mut Parser::new(), &[input])
}

fn event(id: &str, event: &str, data: &str) -> Parsed {
    Ok(Item::Event(ParsedEvent {
        id: id.into(),
        event: event.into(),
        data: data.into(),
    }))
}

fn message(data: &str) -> Parsed {
    event("", "message", data)
}

/// Runs a table of `(input, expected items)` rows, feeding each input whole.
fn check_table(rows: &[(&[u8], Vec<Parsed>)]) {
    for (input, expected) in rows {
        assert_eq!(
            &parse(input),
            expected,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn parser_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Parser>();
}

#[test]
fn one_leading_bom_is_stripped() {
    check_table(&[
        (b"\xEF\xBB\xBFdata: a\n\n", vec![message("a")]),
        (b"\xEF\xBB\xBF\n", vec![]),
        (b"\xEF\xBB\xBF", vec![]),
    ]);
}

#[test]
fn leading_bom_split_across_chunks_is_stripped() {
    let input = b"\xEF\xBB\xBFdata: a\n\n";
    for first in 0..=3 {
        for second in first..=3 {
            let chunks: [&[u8]; 3] = [&input[..first], &input[first..second], &input[second..]];
            let items = parse_chunks(&mut Parser::new(), &chunks);
            assert_eq!(items, vec![message("a")], "split at {first}/{second}");
        }
    }
}

#[test]
fn only_one_bom_is_stripped() {
    // The second BOM belongs to the field name, which is then unknown.
    check_table(&[(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n", vec![])]);
}

#[test]
fn bom_after_the_start_is_ordinary_text() {
    check_table(&[
        (b"data: \xEF\xBB\xBFa\n\n", vec![message("\u{FEFF}a")]),
        (b"\n\xEF\xBB\xBFdata: a\n\n", vec![]),
    ]);
    // Also across a chunk boundary: the start of the stream is checked only once.
    let items = parse_chunks(
        &mut Parser::new(),
        &[b"data: x\n\n", b"\xEF\xBB\xBFdata: a\n\n"],
    );
    assert_eq!(items, vec![message("x")]);
}

#[test]
fn incomplete_bom_prefix_is_ordinary_text() {
    check_table(&[
        (b"\xEF\xBBdata: a\n\n", vec![]),
        (b"\xEF\n\ndata: a\n\n", vec![message("a")]),
    ]);
    let items = parse_chunks(
        &mut Parser::new(),
        &[b"\xEF", b"\xBB", b"x\n", b"data: a\n\n"],
    );
    assert_eq!(items, vec![message("a")]);
}

#[test]
fn lf_cr_and_crlf_all_end_lines() {
    check_table(&[
        (b"data: a\n\n", vec![message("a")]),
        (b"data: a\r\r", vec![message("a")]),
        (b"data: a\r\n\r\n", vec![message("a")]),
        (b"data: a\rdata: b\ndata: c\r\n\n", vec![message("a\nb\nc")]),
        (
            b"data: a\n\rdata: b\r\n\r",
            vec![message("a"), message("b")],
        ),
    ]);
}

#[test]
fn crlf_split_across_chunks_is_one_line_end() {
    // Were the LF taken as a second line end, it would be a blank line dispatching "a" alone.
    let items = parse_chunks(
        &mut Parser::new(),
        &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
    );
    assert_eq!(items, vec![message("a\nb")]);
}

#[test]
fn event_ending_on_lone_cr_is_dispatched_without_waiting() {
    let mut parser = Parser::new();
    parser.feed(b"data: a\r\r");
    assert_eq!(parser.next_item(), Some(message("a")));
    assert_eq!(parser.next_item(), None);
}

#[test]
fn lf_after_a_dispatching_cr_is_swallowed() {
    let mut parser = Parser::new();
    parser.feed(b"data: a\r\r");
    assert_eq!(parser.next_item(), Some(message("a")));
    parser.feed(b"\ndata: b\r");
    assert_eq!(parser.next_item(), None);
    parser.feed(b"\ndata: c\n\n");
    assert_eq!(parser.next_item(), Some(message("b\nc")));
    assert_eq!(parser.next_item(), None);
}

#[test]
fn only_one_lf_after_a_cr_is_swallowed() {
    // CR LF LF is a line end followed by a blank line.
    let items = parse_chunks(&mut Parser::new(), &[b"data: a\r", b"\n", b"\n"]);
    assert_eq!(items, vec![message("a")]);
}

#[test]
fn comment_lines_are_ignored() {
    check_table(&[
        (b":\n\n", vec![]),
        (
            b": hello\ndata: a\n: between\ndata: b\n\n",
            vec![message("a\nb")],
        ),
        (b":data: not data\n\n", vec![]),
    ]);
}

#[test]
fn field_without_colon_is_a_name_with_empty_value() {
    check_table(&[
        (b"data\n\n", vec![message("")]),
        (b"data\ndata\n\n", vec![message("\n")]),
        (b"event\ndata: a\n\n", vec![message("a")]),
        (b"id: 3\nid\ndata: a\n\n", vec![message("a")]),
    ]);
}

#[test]
fn exactly_one_leading_space_is_removed_from_the_value() {
    check_table(&[
        (b"data:a\n\n", vec![message("a")]),
        (b"data: a\n\n", vec![message("a")]),
        (b"data:  a\n\n", vec![message(" a")]),
        (b"data: a \n\n", vec![message("a ")]),
        (b"data:\ta\n\n", vec![message("\ta")]),
    ]);
}

#[test]
fn value_keeps_colons_after_the_first() {
    check_table(&[(b"data: a:b: c\n\n", vec![message("a:b: c")])]);
}

#[test]
fn unknown_fields_are_ignored() {
    check_table(&[
        (b"foo: bar\ndata: a\nbaz\n\n", vec![message("a")]),
        (b"foo: bar\n\n", vec![]),
        (b" data: a\n\n", vec![]),
    ]);
}

#[test]
fn field_names_are_case_sensitive() {
    check_table(&[(b"Data: a\nDATA: b\n\n", vec![])]);
}

#[test]
fn id_containing_nul_is_ignored() {
    check_table(&[
        (
            b"id: 1\n\nid: 2\0\ndata: a\n\n",
            vec![event("1", "message", "a")],
        ),
        (b"id: \0\ndata: a\n\n", vec![message("a")]),
    ]);
}

#[test]
fn empty_id_resets_the_last_event_id() {
    let mut parser = Parser::new();
    let items = parse_chunks(
        &mut parser,
        &[b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\nid:\ndata: c\n\n"],
    );
    assert_eq!(
        items,
        vec![event("1", "message", "a"), message("b"), message("c")]
    );
    assert_eq!(parser.last_event_id(), "");
}

#[test]
fn last_event_id_carries_over_to_later_events() {
    let mut parser = Parser::new();
    let items = parse_chunks(&mut parser, &[b"id: 7\ndata: a\n\ndata: b\n\n"]);
    assert_eq!(
        items,
        vec![event("7", "message", "a"), event("7", "message", "b")]
    );
    assert_eq!(parser.last_event_id(), "7");
}

#[test]
fn id_may_come_after_data_in_the_same_event() {
    check_table(&[(b"data: a\nid: 9\n\n", vec![event("9", "message", "a")])]);
}

#[test]
fn event_without_data_dispatches_nothing_but_updates_last_event_id() {
    let mut parser = Parser::new();
    assert_eq!(
        parse_chunks(&mut parser, &[b"id: 5\nevent: ping\n\n"]),
        vec![]
    );
    assert_eq!(parser.last_event_id(), "5");
    // The type of the data-less event does not leak into the next one.
    assert_eq!(
        parse_chunks(&mut parser, &[b"data: a\n\n"]),
        vec![event("5", "message", "a")]
    );
}

#[test]
fn retry_with_ascii_digits_is_yielded() {
    check_table(&[
        (b"retry: 1000\n", vec![Ok(Item::Retry(1000))]),
        (b"retry:0\n", vec![Ok(Item::Retry(0))]),
        (b"retry: 007\n", vec![Ok(Item::Retry(7))]),
        (
            b"retry: 99999999999999999999999\n",
            vec![Ok(Item::Retry(u64::MAX))],
        ),
    ]);
}

#[test]
fn retry_with_anything_but_ascii_digits_is_ignored() {
    check_table(&[
        (b"retry\n", vec![]),
        (b"retry:\n", vec![]),
        (b"retry:  10\n", vec![]),
        (b"retry: 10 \n", vec![]),
        (b"retry: -1\n", vec![]),
        (b"retry: +1\n", vec![]),
        (b"retry: 1.5\n", vec![]),
        (b"retry: 1e3\n", vec![]),
        ("retry: \u{0661}\n".as_bytes(), vec![]), // ARABIC-INDIC DIGIT ONE
    ]);
}

#[test]
fn retry_does_not_end_or_change_the_event() {
    check_table(&[(
        b"data: a\nretry: 5\ndata: b\n\n",
        vec![Ok(Item::Retry(5)), message("a\nb")],
    )]);
}

#[test]
fn event_type_defaults_to_message() {
    check_table(&[
        (b"data: a\n\n", vec![message("a")]),
        (b"event:\ndata: a\n\n", vec![message("a")]),
        (b"event: add\ndata: a\n\n", vec![event("", "add", "a")]),
        (
            b"event: add\nevent: remove\ndata: a\n\n",
            vec![event("", "remove", "a")],
        ),
    ]);
}

#[test]
fn event_type_resets_after_dispatch() {
    check_table(&[(
        b"event: add\ndata: a\n\ndata: b\n\n",
        vec![event("", "add", "a"), message("b")],
    )]);
}

#[test]
fn only_the_final_lf_of_data_is_removed() {
    check_table(&[
        (b"data: a\ndata:\n\n", vec![message("a\n")]),
        (b"data:\ndata:\ndata:\n\n", vec![message("\n\n")]),
        (b"data:\n\n", vec![message("")]),
    ]);
}

#[test]
fn unterminated_event_is_discarded_at_end_of_stream() {
    let mut parser = Parser::new();
    let items = parse_chunks(&mut parser, &[b"data: a\n\nid: 2\ndata: b\n"]);
    assert_eq!(items, vec![message("a")]);
    assert_eq!(parser.last_event_id(), "");
    // The discarded event's id does not leak into the next stream either.
    assert_eq!(
        parse_chunks(&mut parser, &[b"data: c\n\n"]),
        vec![message("c")]
    );
}

#[test]
fn unterminated_last_line_is_discarded_at_end_of_stream() {
    check_table(&[
        (b"data: a\n\ndata: b", vec![message("a")]),
        (b"retry: 10", vec![]),
        (b"data: a\n", vec![]),
    ]);
}

#[test]
fn lone_cr_at_end_of_stream_is_a_line_end() {
    check_table(&[
        (b"data: a\r\r", vec![message("a")]),
        (b"data: a\n\r", vec![message("a")]),
    ]);
}

#[test]
fn finish_keeps_complete_items_not_yet_taken() {
    let mut parser = Parser::new();
    parser.feed(b"data: a\n\ndata: b\n\ndata: c");
    parser.finish();
    let items: Vec<_> = std::iter::from_fn(|| parser.next_item()).collect();
    assert_eq!(items, vec![message("a"), message("b")]);
}

#[test]
fn finish_starts_a_new_stream_keeping_the_last_event_id() {
    let mut parser = Parser::new();
    assert_eq!(
        parse_chunks(&mut parser, &[b"\xEF\xBB\xBFid: 1\ndata: a\n\ndata: cut"]),
        vec![event("1", "message", "a")]
    );
    // The reconnected stream may start with its own BOM.
    assert_eq!(
        parse_chunks(&mut parser, &[b"\xEF\xBB\xBFdata: b\n\n"]),
        vec![event("1", "message", "b")]
    );
}

#[test]
fn invalid_utf8_becomes_replacement_character() {
    check_table(&[
        (b"data: a\xFFb\n\n", vec![message("a\u{FFFD}b")]),
        (b"data: \xE2\x82\n\n", vec![message("\u{FFFD}")]),
        (
            b"event: \xC0\ndata: a\n\n",
            vec![event("", "\u{FFFD}", "a")],
        ),
        (
            b"id: \xFF\ndata: a\n\n",
            vec![event("\u{FFFD}", "message", "a")],
        ),
    ]);
}

#[test]
fn multibyte_character_split_across_chunks_decodes_correctly() {
    let input = "data: h\u{e9}llo \u{20ac}\u{1F600}\n\n".as_bytes();
    for split in 0..input.len() {
        let items = parse_chunks(&mut Parser::new(), &[&input[..split], &input[split..]]);
        assert_eq!(
            items,
            vec![message("h\u{e9}llo \u{20ac}\u{1F600}")],
            "split {split}"
        );
    }
}

#[test]
fn nul_and_other_controls_in_data_are_kept() {
    check_table(&[(b"data: a\0b\x07\t\n\n", vec![message("a\0b\x07\t")])]);
}

fn small(max_line_len: usize, max_event_len: usize) -> Parser {
    Parser::with_limits(Limits {
        max_line_len,
        max_event_len,
    })
}

#[test]
fn line_longer_than_limit_fails_and_skips_to_the_line_end() {
    let mut parser = small(12, 100);
    let items = parse_chunks(
        &mut parser,
        &[b"data: ok\n\ndata: 123456789\ndata: x\n\nid: 1\ndata: after\n\n"],
    );
    assert_eq!(
        items,
        vec![
            message("ok"),
            Err(ParseError::LineTooLong { limit: 12 }),
            event("1", "message", "after"),
        ]
    );
}

#[test]
fn line_of_exactly_the_limit_is_accepted() {
    let items = parse_chunks(&mut small(8, 100), &[b"data: 12\n\n"]);
    assert_eq!(items, vec![message("12")]);
}

#[test]
fn long_line_fed_in_many_chunks_is_not_buffered_past_the_limit() {
    let mut parser = small(1000, 100_000);
    let mut errors = 0;
    parser.feed(b"data: ");
    for _ in 0..10_000 {
        for item in parser.feed_iter(&[b'x'; 100]) {
            assert_eq!(item, Err(ParseError::LineTooLong { limit: 1000 }));
            errors += 1;
        }
        // Never more than the limit plus one chunk held.
        assert!(
            parser.buf.len() <= 1000 + 100,
            "buffered {}",
            parser.buf.len()
        );
    }
    assert_eq!(errors, 1);
    // The blank line ends the poisoned event; the next one is dispatched normally.
    parser.feed(b"\r\n\r\ndata: next\n\n");
    assert_eq!(parser.next_item(), Some(message("next")));
}

#[test]
fn long_line_search_resumes_where_it_stopped() {
    let mut parser = small(1 << 20, 1 << 20);
    for _ in 0..100 {
        parser.feed(&[b'x'; 64]);
        assert_eq!(parser.next_item(), None);
        // Everything fed so far is known to hold no line end: the next search starts after it.
        assert_eq!(parser.scan_from, parser.buf.len());
    }
}

#[test]
fn over_long_line_inside_event_poisons_the_event() {
    let items = parse_chunks(
        &mut small(8, 100),
        &[
            b"data: a\nid: 1\n",
            b"data: 1234",
            b"56789\ndata: b\n\ndata: c\n\n",
        ],
    );
    assert_eq!(
        items,
        vec![
            Err(ParseError::LineTooLong { limit: 8 }),
            event("1", "message", "c")
        ]
    );
}

#[test]
fn event_larger_than_limit_fails_and_is_not_dispatched() {
    let mut parser = small(100, 10);
    let items = parse_chunks(
        &mut parser,
        &[b"data: 12345\ndata: 6789\nid: 3\ndata: more\n\ndata: 0123456789\n\n"],
    );
    assert_eq!(
        items,
        vec![
            Err(ParseError::EventTooLarge { limit: 10 }),
            event("3", "message", "0123456789")
        ]
    );
    // The id of the refused event still applied, so a reconnect does not ask for it again.
    assert_eq!(parser.last_event_id(), "3");
}

#[test]
fn retry_still_applies_inside_a_poisoned_event() {
    let items = parse_chunks(&mut small(100, 2), &[b"data: abc\nretry: 9\n\n"]);
    assert_eq!(
        items,
        vec![
            Err(ParseError::EventTooLarge { limit: 2 }),
            Ok(Item::Retry(9))
        ]
    );
}

#[test]
fn buffer_is_reused_after_lines_are_consumed() {
    let mut parser = Parser::new();
    let chunk = b"id: 1\ndata: some payload\n\n".repeat(100);
    for _ in 0..10 {
        assert_eq!(parser.feed_iter(&chunk).count(), 100);
    }
    // Consumed bytes are dropped on the next feed, so the buffer never holds more than a chunk.
    assert!(parser.buf.capacity() < 2 * chunk.len());
}
