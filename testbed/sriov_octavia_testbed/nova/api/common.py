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
"""Small helpers every Compute API controller uses."""

import datetime

PREFIX = '/compute'
V21 = PREFIX + '/v2.1'
# Without Keystone, requests carry no project; Nova's noauth takes it from
# these headers, the emulator falls back to one fixed project.
DEFAULT_PROJECT = 'testbed'


def base_url(req):
    """Where links in responses point: the v2.1 root of this host."""
    return req.host_url + V21


def project_id(req):
    return req.headers.get('X-Project-Id', DEFAULT_PROJECT)


def user_id(req):
    return req.headers.get('X-User-Id', DEFAULT_PROJECT)


def now():
    """Timestamps as Nova's API formats them (no zone, microseconds)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%S.%f')
