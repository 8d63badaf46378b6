#!/bin/sh
# vdrelay: the QEMU arguments for one VM without libvirt (VM "web-01"). QEMU listens on both sockets; the bridge
# connects. `wait=off` lets the VM boot before the bridge is there; nothing is lost meanwhile (the guest's writes
# block until a host connects, spec §12).
#
#   virtio-serial-pci          the virtio-serial bus
#   -chardev socket,...        the host end of the agent port: a UNIX socket server
#   virtserialport ...         the guest end, named com.redhat.spice.0 (what spice-vdagentd opens); its id is what
#                              QMP VSERPORT_CHANGE reports (bridge config qmp.device = "vdport", qmp.chardev = "vdagent")
#   -qmp ...                   a QMP monitor for the bridge (guest port open/closed); optional but recommended
VM=web-01
RUN=/run/vdrelay
exec qemu-system-x86_64 \
  -machine q35,accel=kvm -m 4096 -smp 2 \
  -drive file=/var/lib/vms/$VM.qcow2,if=virtio \
  -device virtio-serial-pci,id=vser0 \
  -chardev socket,id=vdagent,path=$RUN/$VM.vdagent.sock,server=on,wait=off \
  -device virtserialport,bus=vser0.0,chardev=vdagent,name=com.redhat.spice.0,id=vdport \
  -qmp unix:$RUN/$VM.qmp.sock,server=on,wait=off \
  "$@"
