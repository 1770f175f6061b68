# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""What a load balancer's TLS file may hold, checked before it is stored.

Octavia's amphora driver uploads three kinds of file per load balancer,
all named ``<something>.pem``:

- a certificate of a listener (default or SNI) or of a pool: the
  certificate, its private key and the intermediates;
- a client CA bundle or a CRL, as the secret holds it: certificates or
  CRLs, no key;
- a listener's crt-list, ``<listener id>.pem``, which haproxy.cfg names
  after ``crt-list``: the absolute paths of the listener's certificate
  files, one a line, the default one first.

The name does not tell them apart, the content does: PEM blocks make a
bundle, lines of paths a crt-list. A file haproxy would refuse is refused
here, with the field at fault, so that the controller learns which secret
is wrong instead of finding a configuration that no longer loads.

Dates: the certificate a listener serves (the one of the key) must be
valid now, since every client would refuse it otherwise. Other
certificates only draw a warning when they are not: real chains carry
expired cross-signatures clients skip (Let's Encrypt served one for
years), and a CA bundle may hold an expired CA beside valid ones. A CA
bundle none of whose certificates is valid now verifies nobody: refused.
"""

import os
import re

from amphora_agent import pem

# Octavia names the files after a UUID or a SHA-1; anything that could
# leave the load balancer's directory, or hide in it, is refused.
_FILENAME = re.compile(r'^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,250}\.pem$')
# haproxy reads these from a certificate file besides certificates, keys
# and CRLs.
_PARAMETERS = ('DH PARAMETERS', 'EC PARAMETERS')
_SNI_FILTER = re.compile(r'^!?[A-Za-z0-9*_.-]+$')


class Checked:
    """What a file was found to hold: for the log, never a key.

    ``warnings``: what is odd about it but does not stop haproxy.
    """

    def __init__(self, description, holds_key=False, warnings=()):
        self.description = description
        self.holds_key = holds_key
        self.warnings = list(warnings)


def check_filename(filename):
    if '/' in filename or '..' in filename or not _FILENAME.match(filename):
        raise pem.InvalidCertificate(
            'filename', f'{filename!r} is not a certificate file name '
            '(letters, digits, "_", "-" and single dots, ending in ".pem", '
            'no "/" and no "..")')
    return filename


def check(data, directory, filename, now=None):
    """Check ``data`` (bytes) as the file ``filename`` of ``directory``.

    ``directory`` is the load balancer's certificate directory: a crt-list
    may only name files in it, already stored. Returns a Checked; raises
    pem.InvalidCertificate.
    """
    if not data or not data.strip():
        raise pem.InvalidCertificate(
            'body', 'a certificate file is required: PEM certificates, '
            'keys or CRLs, or a crt-list')
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise pem.InvalidCertificate(
            'body', 'not PEM text (a DER or PKCS#12 file must be converted '
            'first)') from None
    blocks = pem.blocks(text)
    if pem.unterminated(text, blocks):
        raise pem.InvalidCertificate(
            'body', 'a "-----BEGIN ...-----" line has no matching '
            '"-----END ...-----" line')
    if blocks:
        return _check_bundle(blocks, now or pem.now())
    return _check_crt_list(text, directory, filename)


def _check_bundle(blocks, now):
    keys, certificates, crls = [], [], []
    for label, block in blocks:
        if pem.is_private_key(label):
            keys.append((label, block))
        elif label == pem.CERTIFICATE:
            certificates.append(block)
        elif label == pem.CRL:
            crls.append(block)
        elif label not in _PARAMETERS:
            raise pem.InvalidCertificate(
                'body', f'a "{label}" block is not something haproxy reads '
                'from a certificate file')
    for index, block in enumerate(crls):
        pem.load_crl(block, f'crls[{index}]')
    if len(keys) > 1:
        raise pem.InvalidCertificate(
            'private_key', f'{len(keys)} private keys in the PEM; a '
            'certificate file holds exactly one')
    if keys:
        return _check_key_bundle(keys[0], certificates, now)
    if not certificates and not crls:
        raise pem.InvalidCertificate(
            'body', 'no certificate, private key or CRL in the PEM')
    loaded = [(f'certificates[{index}]',
               pem.load_certificate(block, f'certificates[{index}]'))
              for index, block in enumerate(certificates)]
    warnings = _out_of_date(loaded, now)
    if loaded and len(warnings) == len(loaded):
        # None valid: say why the first one is not.
        pem.check_dates(loaded[0][1], loaded[0][0], now)
    return Checked(f'{len(certificates)} certificate(s), {len(crls)} '
                   'CRL(s)', warnings=warnings)


def _out_of_date(loaded, now):
    """A warning for each ``(field, certificate)`` not valid ``now``."""
    warnings = []
    for field, certificate in loaded:
        try:
            pem.check_dates(certificate, field, now)
        except pem.InvalidCertificate as error:
            warnings.append(f'{error} ({pem.describe(certificate)})')
    return warnings


def _check_key_bundle(key_block, certificates, now):
    """A certificate with its key: haproxy takes the first as the leaf."""
    label, block = key_block
    if not certificates:
        raise pem.InvalidCertificate(
            'certificate', 'no certificate for the private key in the PEM')
    key = pem.load_private_key(block, label)
    leaf = pem.load_certificate(certificates[0], 'certificate')
    pem.check_key_matches(leaf, key, 'certificate')
    pem.check_dates(leaf, 'certificate', now)
    intermediates = [(f'intermediates[{index}]',
                      pem.load_certificate(intermediate,
                                           f'intermediates[{index}]'))
                     for index, intermediate in enumerate(certificates[1:])]
    return Checked(f'certificate {pem.describe(leaf)} with its key and '
                   f'{len(intermediates)} intermediate(s)', holds_key=True,
                   warnings=_out_of_date(intermediates, now))


def _check_crt_list(text, directory, filename):
    entries = [(number, line.split()) for number, line in
               enumerate(text.splitlines(), 1)
               if line.strip() and not line.strip().startswith('#')]
    if not entries or not all(words[0].startswith('/')
                              for _, words in entries):
        raise pem.InvalidCertificate(
            'body', 'neither PEM (no "-----BEGIN ...-----" block) nor a '
            'crt-list (absolute paths of certificate files, one a line)')
    for number, words in entries:
        reason = _crt_list_entry_fault(words, directory, filename)
        if reason:
            raise pem.InvalidCertificate('crt_list',
                                         f'line {number}: {reason}')
    return Checked(f'crt-list of {len(entries)} certificate file(s)')


def _crt_list_entry_fault(words, directory, filename):
    """Why a crt-list line cannot be used, or None."""
    path = words[0]
    if (os.path.normpath(path) != path or
            os.path.dirname(path) != directory):
        return (f'{path} is not a file of this load balancer\'s '
                f'certificate directory {directory}')
    name = os.path.basename(path)
    if name == filename:
        return 'a crt-list cannot name itself'
    try:
        check_filename(name)
    except pem.InvalidCertificate as error:
        return error.reason
    if not os.path.isfile(path):
        return (f'{name} was not uploaded; upload the certificate files '
                'before the crt-list naming them')
    for word in words[1:]:
        if word.startswith('['):
            return ('SSL options in a crt-list are not accepted, only SNI '
                    'filters')
        if not _SNI_FILTER.match(word):
            return f'{word!r} is not an SNI filter'
    return None
