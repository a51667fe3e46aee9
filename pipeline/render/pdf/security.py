"""The PDF standard security handler, revision 6 (AES-256, PDF 2.0), encryption side only.

Why this exists: qpdf (behind pikepdf) derives R6 keys with its own bundled AES and takes
about 13 ms a file, nearly all of a statement's encryption time. The derivation is four
Algorithm 2.B hashes (ISO 32000-2 §7.6.4.3.4): U and UE from the user password, O and OE
from the owner password and U. Done with OpenSSL (the `cryptography` package for AES,
`hashlib` for SHA-2) it costs about 5 ms; everything else (AES-256-CBC of each string and
stream with the random file key) costs microseconds. The hashes' AES rounds go straight to the
system's OpenSSL library through cffi: a `cryptography` cipher object per round cost a fifth
of the derivation (`cryptography` remains the fallback, and the reference the tests compare
with). Files written with this handler are read back by qpdf, pikepdf and poppler in the
tests, with the right password only.

Nothing here keeps a password: a handler holds the random file key and the public /Encrypt
values only. Errors never quote a password.
"""

from __future__ import annotations

import ctypes.util
import functools
import hashlib
import os
import stringprep
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "PasswordEncodingError",
    "Permissions",
    "SecurityHandler",
    "hash_2b",
    "password_bytes",
    "saslprep",
]

Random = Callable[[int], bytes]
_HASHES = (hashlib.sha256, hashlib.sha384, hashlib.sha512)
_ZERO_IV = bytes(16)


class PasswordEncodingError(ValueError):
    """A password contains characters SASLprep prohibits (the message never quotes it)."""


# ---------------------------------------------------------------- passwords


def saslprep(password: str) -> str:
    """RFC 4013 SASLprep, which R6 requires before a password is UTF-8 encoded.

    Without it the same password typed on two systems (e.g. with a no-break space, or
    composed vs decomposed accents) could hash differently.
    """
    if password.isascii() and password.isprintable():
        return password  # nothing to map, normalise or prohibit: the common case
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in password
        if not stringprep.in_table_b1(char)
    )
    normalized = unicodedata.normalize("NFKC", mapped)
    for char in normalized:
        if _prohibited(char):
            raise PasswordEncodingError("password contains a character SASLprep prohibits")
    if any(stringprep.in_table_d1(char) for char in normalized) and (
        any(stringprep.in_table_d2(char) for char in normalized)
        or not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1]))
    ):
        raise PasswordEncodingError("password mixes right-to-left and left-to-right text")
    return normalized


def _prohibited(char: str) -> bool:
    return (
        stringprep.in_table_c12(char) or stringprep.in_table_c21_c22(char)
        or stringprep.in_table_c3(char) or stringprep.in_table_c4(char)
        or stringprep.in_table_c5(char) or stringprep.in_table_c6(char)
        or stringprep.in_table_c7(char) or stringprep.in_table_c8(char)
        or stringprep.in_table_c9(char) or stringprep.in_table_a1(char)
    )


def password_bytes(password: str) -> bytes:
    """The bytes R6 hashes: SASLprep, UTF-8, at most 127 bytes (§7.6.4.3.3)."""
    return saslprep(password).encode("utf-8")[:127]


# ---------------------------------------------------------------- Algorithm 2.B


RoundCipher = Callable[[bytes, bytes], bytes]
"""AES-128-CBC without padding: (key and IV as one 32-byte K, data) -> ciphertext."""


def _cryptography_rounds() -> RoundCipher:
    """The reference: a `cryptography` cipher object per round."""
    def encrypt(k: bytes, data: bytes) -> bytes:
        return Cipher(algorithms.AES128(k[:16]), modes.CBC(k[16:32])).encryptor().update(data)
    return encrypt


_LIBCRYPTO_DECLARATIONS = """
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_cipher_st EVP_CIPHER;
EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void);
void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *ctx);
const EVP_CIPHER *EVP_aes_128_cbc(void);
int EVP_EncryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, void *engine,
                       const unsigned char *key, const unsigned char *iv);
int EVP_CIPHER_CTX_set_padding(EVP_CIPHER_CTX *ctx, int padding);
int EVP_EncryptUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,
                      const unsigned char *in, int inl);
"""


@functools.cache
def _libcrypto() -> tuple[Any, Any] | None:
    """cffi's handle on the system's libcrypto (OpenSSL 1.1 or 3), or None where there is none."""
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        from cffi import FFI

        ffi = FFI()
        ffi.cdef(_LIBCRYPTO_DECLARATIONS)
        return ffi, ffi.dlopen(name)
    except (ImportError, OSError, AttributeError):
        return None


def _libcrypto_rounds(size: int) -> RoundCipher | None:
    """One OpenSSL context re-keyed every round (microseconds less than a new cipher object),
    for data of at most `size` bytes; None where libcrypto cannot be loaded."""
    loaded = _libcrypto()
    if loaded is None:
        return None
    ffi, lib = loaded
    context = ffi.gc(lib.EVP_CIPHER_CTX_new(), lib.EVP_CIPHER_CTX_free)
    if context == ffi.NULL or not lib.EVP_EncryptInit_ex(context, lib.EVP_aes_128_cbc(),
                                                         ffi.NULL, ffi.NULL, ffi.NULL):
        return None
    lib.EVP_CIPHER_CTX_set_padding(context, 0)
    out, written = ffi.new("unsigned char[]", size), ffi.new("int *")
    view = ffi.buffer(out)
    init, update = lib.EVP_EncryptInit_ex, lib.EVP_EncryptUpdate

    def encrypt(k: bytes, data: bytes) -> bytes:
        if len(data) > size or not (init(context, ffi.NULL, ffi.NULL, k, k[16:32])
                                    and update(context, out, written, data, len(data))):
            raise RuntimeError("OpenSSL refused an AES round")  # never: sizes are fixed
        return view[:written[0]]

    return encrypt


def hash_2b(password: bytes, salt: bytes, udata: bytes = b"", *,
            reference: bool = False) -> bytes:
    """ISO 32000-2 Algorithm 2.B: the deliberately slow hash behind every R6 key.

    Each round AES-128-CBC-encrypts 64 copies of (password, K, udata) keyed by K, then
    hashes the result with SHA-256/384/512 chosen by the ciphertext; at least 64 rounds,
    ending when the last ciphertext byte is at most round - 32. `reference`: the AES rounds
    through `cryptography` (what the tests compare the libcrypto path with).
    """
    k = hashlib.sha256(password + salt + udata).digest()
    largest = (len(password) + 64 + len(udata)) * 64  # K is at most 64 bytes (SHA-512)
    fast = None if reference else _libcrypto_rounds(largest)
    aes = fast if fast is not None else _cryptography_rounds()
    rounds = 0
    while True:
        e = aes(k, (password + k + udata) * 64)
        # 256 = 1 (mod 3), so the 16 first bytes as one big number mod 3 = their sum mod 3
        k = _HASHES[int.from_bytes(e[:16], "big") % 3](e).digest()
        rounds += 1
        if rounds >= 64 and e[-1] <= rounds - 32:
            return k[:32]


def _aes256_cbc_no_pad(key: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES256(key), modes.CBC(_ZERO_IV)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _aes256_ecb_block(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES256(key), modes.ECB()).encryptor()  # noqa: S305 (spec)
    return encryptor.update(block) + encryptor.finalize()


# ---------------------------------------------------------------- permissions


@dataclass(frozen=True, slots=True)
class Permissions:
    """User access permissions (Table 22); owners can do everything."""

    print_lowres: bool = True
    print_highres: bool = True
    accessibility: bool = True  # bit 10: screen readers may extract text
    extract: bool = False  # bit 5: copy text and graphics
    modify_other: bool = False  # bit 4
    modify_annotation: bool = False  # bit 6
    modify_form: bool = False  # bit 9
    modify_assembly: bool = False  # bit 11

    @property
    def p_value(self) -> int:
        """The signed 32-bit /P value; reserved bits 7-8 and 13-32 are 1, bits 1-2 are 0."""
        bits = {3: self.print_lowres or self.print_highres, 4: self.modify_other,
                5: self.extract, 6: self.modify_annotation, 9: self.modify_form,
                10: self.accessibility, 11: self.modify_assembly,
                12: self.print_highres}
        value = 0xFFFFF0C0  # bits 7, 8 and 13-32
        for bit, allowed in bits.items():
            if allowed:
                value |= 1 << (bit - 1)
        return value - (1 << 32)


STATEMENT_PERMISSIONS = Permissions()


# ---------------------------------------------------------------- the handler


class SecurityHandler:
    """One file's R6 encryption: a fresh random file key and the /Encrypt values for it.

    Build one per file (new salts and key every time); then `encrypt` every string and
    stream of the file, except the /Encrypt dictionary itself and the trailer's /ID.
    """

    __slots__ = ("_key", "_random", "o", "u", "oe", "ue", "perms", "p_value",
                 "encrypt_metadata")

    def __init__(self, *, user_password: str, owner_password: str,
                 permissions: Permissions = STATEMENT_PERMISSIONS,
                 encrypt_metadata: bool = True, random: Random = os.urandom) -> None:
        user, owner = password_bytes(user_password), password_bytes(owner_password)
        self._random = random
        self._key = random(32)
        salts = random(32)  # user validation, user key, owner validation, owner key
        uvs, uks, ovs, oks = salts[:8], salts[8:16], salts[16:24], salts[24:32]
        self.u = hash_2b(user, uvs) + uvs + uks
        self.ue = _aes256_cbc_no_pad(hash_2b(user, uks), self._key)
        self.o = hash_2b(owner, ovs, self.u) + ovs + oks
        self.oe = _aes256_cbc_no_pad(hash_2b(owner, oks, self.u), self._key)
        self.p_value = permissions.p_value
        self.encrypt_metadata = encrypt_metadata
        perms = ((self.p_value & 0xFFFFFFFF).to_bytes(4, "little") + b"\xff\xff\xff\xff"
                 + (b"T" if encrypt_metadata else b"F") + b"adb" + random(4))
        self.perms = _aes256_ecb_block(self._key, perms)

    def encrypt(self, data: bytes) -> bytes:
        """AESV3: a random 16-byte IV, then AES-256-CBC with PKCS#7 padding (§7.6.3)."""
        iv = self._random(16)
        pad = 16 - len(data) % 16
        encryptor = Cipher(algorithms.AES256(self._key), modes.CBC(iv)).encryptor()
        return iv + encryptor.update(data + bytes((pad,)) * pad) + encryptor.finalize()

    def encrypt_dictionary(self) -> bytes:
        """The /Encrypt dictionary (its strings are never encrypted)."""
        return (
            b"<< /Filter /Standard /V 5 /R 6 /Length 256"
            b" /CF << /StdCF << /Type /CryptFilter /CFM /AESV3 /AuthEvent /DocOpen"
            b" /Length 32 >> >> /StmF /StdCF /StrF /StdCF"
            b" /O <" + self.o.hex().encode() + b"> /U <" + self.u.hex().encode()
            + b"> /OE <" + self.oe.hex().encode() + b"> /UE <" + self.ue.hex().encode()
            + b"> /P " + str(self.p_value).encode()
            + b" /Perms <" + self.perms.hex().encode() + b">"
            + (b"" if self.encrypt_metadata else b" /EncryptMetadata false") + b" >>"
        )
