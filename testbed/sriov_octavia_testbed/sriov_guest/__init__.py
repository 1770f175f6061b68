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
"""A qemu guest with an emulated SR-IOV NIC: qemu's ``igb``, VFs on igbvf.

The guest runs a kernel of its own (Debian's backports kernel, whose
``igb``, ``igbvf``, ``ip_vs`` and ``sctp`` modules this machine's kernel
lacks) on this machine's own userland, shared read-only over 9p, so the
project's virtualenv, nft, haproxy and keepalived run in it unbuilt. The
guest plays the hypervisor (the PF, configured as Nova and the
sriov-nic-agent configure it) and the amphora (a VF in a namespace of its
own), and obeys commands sent over a virtio-serial port.
"""
