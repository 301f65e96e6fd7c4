"""Our TBA signatures against OAuth 1.0a as RFC 5849 documents it: the base string of the section 3.4.1 example,
the base string URI examples of 3.4.1.2, the HMAC-SHA1 signature of the section 1.2 example, and HMAC-SHA256
(NetSuite's) over the same base string checked with oauthlib, an independent implementation."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest
from oauthlib.oauth1.rfc5849 import signature as oauthlib_signature

from connectors.netsuite.tba import TbaAuth, base_string, base_string_uri, normalized_parameters, sign

#: RFC 5849 section 3.4.1.1: POST /request?b5=%3D%253D&a3=a&c%40=&a2=r%20b with body c2&a3=2+q
RFC_URL = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"
RFC_OAUTH = [("realm", "Example"), ("oauth_consumer_key", "9djdj82h48djs9d2"), ("oauth_token", "kkk9d7dh3k39sjv7"),
             ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", "137131201"), ("oauth_nonce", "7d8f3e4a"),
             ("oauth_signature", "bYT5CMsGcbgUdFHObYMEfcx6bsw%3D")]
RFC_BODY = [("c2", ""), ("a3", "2 q")]
RFC_BASE_STRING = (
    "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q"
    "%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_"
    "key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m"
    "ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk"
    "9d7dh3k39sjv7")
RFC_NORMALIZED = ("a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2&oauth_nonce="
                  "7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7")


def test_tba_base_string_is_rfc5849_section_3_4_1_example() -> None:
    assert base_string("POST", RFC_URL, RFC_OAUTH, RFC_BODY) == RFC_BASE_STRING


def test_tba_normalized_parameters_are_rfc5849_section_3_4_1_3_2_example() -> None:
    params = [(k, v) for k, v in RFC_OAUTH if k not in ("realm", "oauth_signature")]
    params += [("b5", "=%3D"), ("a3", "a"), ("c@", ""), ("a2", "r b"), *RFC_BODY]
    assert normalized_parameters(params) == RFC_NORMALIZED


def test_tba_base_string_uri_is_rfc5849_section_3_4_1_2_examples() -> None:
    assert base_string_uri("http://EXAMPLE.COM:80/r%20v/X?id=123") == "http://example.com/r%20v/X"
    assert base_string_uri("https://www.example.net:8080/?q=1") == "https://www.example.net:8080/"


def test_tba_query_plus_and_percent20_are_both_a_space() -> None:
    oauth = [("oauth_consumer_key", "k")]
    assert base_string("GET", "http://h/p?q=a+b", oauth) == base_string("GET", "http://h/p?q=a%20b", oauth)
    assert "q%3Da%2520b" in base_string("GET", "http://h/p?q=a+b", oauth)


def test_tba_hmac_sha1_signature_is_rfc5849_section_1_2_example() -> None:
    oauth = [("realm", "Photos"), ("oauth_consumer_key", "dpf43f3p2l4k3l03"), ("oauth_token", "nnch734d00sl2jdk"),
             ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", "137131202"), ("oauth_nonce", "chapoH")]
    base = base_string("GET", "http://photos.example.net/photos?file=vacation.jpg&size=original", oauth)
    assert sign(base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00", "HMAC-SHA1") == "MdpQcU8iPSUjWoN/UDMsK2sui9I="


@pytest.mark.filterwarnings("ignore:use sign_hmac_sha256_with_client:DeprecationWarning")
def test_tba_hmac_sha256_over_the_rfc_base_string_matches_oauthlib_and_hmac() -> None:
    ours = sign(RFC_BASE_STRING, "j49sk3j29djd", "dh893hdasih9")
    key = b"j49sk3j29djd&dh893hdasih9"
    assert ours == base64.b64encode(hmac.new(key, RFC_BASE_STRING.encode(), hashlib.sha256).digest()).decode()
    assert ours == oauthlib_signature.sign_hmac_sha256(RFC_BASE_STRING, "j49sk3j29djd", "dh893hdasih9")


@pytest.mark.filterwarnings("ignore:use sign_hmac_sha256_with_client:DeprecationWarning")
def test_tba_signed_request_verifies_with_oauthlib() -> None:
    auth = TbaAuth(account_id="1234567_SB1", consumer_key="ck", consumer_secret="c s/ecret", token_id="tk",
                   token_secret="t+secret", clock=lambda: 1_700_000_000, nonce=lambda: "n0nce")
    request = httpx.Request("POST", "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/query/v1/suiteql"
                                    "?limit=10&offset=0&q=a+b%20c")
    header = next(auth.sync_auth_flow(request)).headers["Authorization"]
    assert header.startswith('OAuth realm="1234567_SB1", oauth_consumer_key="ck"')
    params = oauthlib_signature.collect_parameters(uri_query=request.url.query.decode(),
                                                   headers={"Authorization": header}, exclude_oauth_signature=True)
    oauthlib_base = oauthlib_signature.signature_base_string(
        "POST", oauthlib_signature.base_string_uri(str(request.url)),
        oauthlib_signature.normalize_parameters(params))
    expected = oauthlib_signature.sign_hmac_sha256(oauthlib_base, "c s/ecret", "t+secret")
    sent = dict(oauthlib_signature.collect_parameters(headers={"Authorization": header},
                                                      exclude_oauth_signature=False))
    assert sent["oauth_signature"] == expected and sent["oauth_signature_method"] == "HMAC-SHA256"
