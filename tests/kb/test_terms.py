# ruff: noqa: RUF001  (full-width characters on purpose)
"""Index and query terms: the same words on both databases, Chinese included."""

from __future__ import annotations

import pytest

from kb.terms import index_terms, query_groups, query_terms, stem


@pytest.mark.parametrize(
    ("word", "stemmed"),
    [
        ("refunds", "refund"),
        ("refunded", "refund"),
        ("refunding", "refund"),
        ("resetting", "reset"),
        ("charged", "charg"),
        ("charge", "charg"),
        ("batteries", "battery"),
        ("address", "address"),
        ("status", "status"),
        ("e1042", "e1042"),
        ("wifi", "wifi"),
        ("bus", "bus"),
    ],
)
def test_english_inflections_meet_at_one_stem(word: str, stemmed: str) -> None:
    assert stem(word) == stemmed


@pytest.mark.parametrize(
    ("sentence", "word"),
    [
        ("如何重置您的账户密码", "重置"),
        ("如何重置您的账户密码", "密码"),
        ("如何重置您的账户密码", "账户"),
        ("申请退款需要多长时间到账", "退款"),
        ("修改绑定的手机号码", "手机"),
        ("修改绑定的手机号码", "号码"),
        ("修改绑定的手机号码", "手机号码"),
    ],
)
def test_a_chinese_sentence_without_spaces_is_indexed_by_the_words_inside_it(
    sentence: str, word: str
) -> None:
    assert word in index_terms(sentence)


def test_text_is_case_folded_and_full_width_letters_are_plain() -> None:
    assert index_terms("ＲＥＳＥＴ Password") == ["reset", "password"]


def test_stop_words_are_left_out_of_index_and_queries() -> None:
    assert index_terms("How do I reset the password of my account") == [
        "reset",
        "password",
        "account",
    ]
    assert query_terms("我的订单") == ["订单"]


def test_search_syntax_becomes_plain_words() -> None:
    assert query_terms('"reset* NEAR(password) OR -login: {title}') == [
        "reset",
        "near",
        "password",
        "login",
        "titl",
    ]


def test_a_long_chinese_query_word_also_looks_for_the_shorter_words_inside_it() -> None:
    assert query_groups("网速慢") == [("网速慢", "网速")]
    assert query_groups("重置密码") == [("重置",), ("密码",)]


def test_kana_becomes_overlapping_pairs() -> None:
    assert index_terms("パスワード") == ["パス", "スワ", "ワー", "ード"]


def test_absurdly_long_tokens_are_not_indexed() -> None:
    assert index_terms("a" * 41 + " ok") == ["ok"]
