//! PV disks and vifs against the fake hypervisor, the in-memory xenstore
//! and a fake kernel ([`fake_kernel`]: backends go to InitWait when made
//! and to Closed when told to close): what `xl create` writes and with
//! which permissions, rollback, destroy, and the hotplug commands.

use xen_abi::domctl::XEN_DOMINF_paused;
use xen_abi::io::xs_wire::*;

use super::domu_tests::{backend, config_text, dom, read, x, xl, xl_with, B, CFG};
use super::fake::{fake_kernel, FakeNetif};
use super::xenstore::{args, Xs, XBT_NULL};
use super::{FileInfo, Host};

const IMG: &str = "/var/lib/vm/vm1.img";
const RO: &str = "/var/lib/vm/ro.img";
const EXTRA: &str = "/var/lib/vm/extra.img";

/// The usual host: images, a block device, the bridge, and the kernel's
/// backends.
fn dev_backend() -> B {
    let mut b = backend();
    let h = b.host();
    for f in [IMG, RO, EXTRA] {
        h.files.insert(f.into(), vec![0; 16]);
    }
    h.add_blockdev("/dev/vda", 254, 0);
    h.add_bridge("xenbr0", 1400);
    h.on_sleep = Some(Box::new(fake_kernel));
    b
}

fn create(b: &mut B, extra: &str) -> super::super::run::Output {
    xl_with(b, &format!("create {CFG}"), &config_text(extra))
}

fn r(b: &mut B, p: &str) -> String {
    read(b, p).unwrap_or_else(|| panic!("no {p}"))
}

fn perms(b: &mut B, p: &str) -> String {
    let v = b.host().xs.request(XS_GET_PERMS, 0, &args(&[p])).unwrap();
    String::from_utf8(v)
        .unwrap()
        .replace('\0', " ")
        .trim_end()
        .to_string()
}

fn ls(b: &mut B, p: &str) -> Vec<String> {
    b.host().xs.directory(XBT_NULL, p).unwrap_or_default()
}

fn loops(b: &mut B) -> Vec<(u32, String, bool)> {
    b.host()
        .loops
        .iter()
        .map(|(n, (f, ro))| (*n, f.clone(), *ro))
        .collect()
}

/// Nothing of domain `id`'s devices is left in xenstore.
fn no_device_entries(b: &mut B, id: u32) {
    for p in [
        format!("/local/domain/0/backend/vbd/{id}"),
        format!("/local/domain/0/backend/vif/{id}"),
        format!("/libxl/{id}/device/vbd"),
        format!("/libxl/{id}/device/vif"),
        format!("/local/domain/{id}/device/vbd"),
        format!("/local/domain/{id}/device/vif"),
    ] {
        assert_eq!(read(b, &p), None, "{p} left behind");
    }
}

const DISKS: &str = "disk = [ '/var/lib/vm/vm1.img,raw,xvda,rw', \
                     'vdev=xvdb,access=ro,target=/var/lib/vm/ro.img', 'phy:/dev/vda,xvdc,w' ]\n";
const VIFS: &str = "vif = [ 'mac=00:16:3e:00:00:02,bridge=xenbr0', 'ip=192.0.2.9' ]\n";

#[test]
fn create_writes_vbd_entries_like_libxl() {
    let mut b = dev_backend();
    let o = create(&mut b, DISKS);
    assert_eq!(o.code, 0, "{o:?}\n{}", b.host().err);
    assert_eq!(b.host().err, format!("Parsing config from {CFG}\n"));
    let be = "/local/domain/0/backend/vbd/1/51712";
    let fe = "/local/domain/1/device/vbd/51712";
    for (k, v) in [
        ("frontend", fe),
        ("frontend-id", "1"),
        ("online", "1"),
        ("removable", "0"),
        ("bootable", "1"),
        ("state", "2"),
        ("dev", "xvda"),
        ("type", "phy"),
        ("mode", "w"),
        ("device-type", "disk"),
        ("discard-enable", "1"),
        ("specification", "xen"),
        ("params", IMG),
        ("script", "/etc/xen/scripts/block"),
        ("node", "/dev/loop0"),
        ("physical-device", "7:0"),
        ("physical-device-path", "/dev/loop0"),
        ("hotplug-status", "connected"),
    ] {
        assert_eq!(r(&mut b, &format!("{be}/{k}")), v, "{k}");
    }
    for (k, v) in [
        ("backend", be),
        ("backend-id", "0"),
        ("state", "1"),
        ("virtual-device", "51712"),
        ("device-type", "disk"),
        ("trusted", "1"),
    ] {
        assert_eq!(r(&mut b, &format!("{fe}/{k}")), v, "{k}");
    }
    let lx = "/libxl/1/device/vbd/51712";
    for (k, v) in [
        ("frontend", fe),
        ("backend", be),
        ("params", IMG),
        ("dev", "xvda"),
    ] {
        assert_eq!(r(&mut b, &format!("{lx}/{k}")), v, "{k}");
    }
    // Backend: dom0's, readable by the domain; frontend: the domain's,
    // readable by dom0; /libxl: dom0 only.
    assert_eq!(perms(&mut b, be), "n0 r1");
    assert_eq!(perms(&mut b, &format!("{be}/state")), "n0 r1");
    assert_eq!(perms(&mut b, fe), "n1 r0");
    assert_eq!(perms(&mut b, &format!("{fe}/state")), "n1 r0");
    assert_eq!(perms(&mut b, &format!("{fe}/backend")), "n1 r0");
    assert_eq!(perms(&mut b, lx), "n0");
    let h = b.host();
    assert!(h
        .xs
        .as_guest(1, XS_WRITE, format!("{fe}/state\x004").as_bytes())
        .is_ok());
    assert!(h
        .xs
        .as_guest(1, XS_WRITE, format!("{be}/state\x004").as_bytes())
        .is_err());
    assert!(h
        .xs
        .as_guest(1, XS_READ, format!("{be}/physical-device\0").as_bytes())
        .is_ok());
    assert!(h
        .xs
        .as_guest(1, XS_READ, format!("{lx}/params\0").as_bytes())
        .is_err());
    // xvdb: read-only on a read-only loop device; xvdc: dom0's block device.
    let be = "/local/domain/0/backend/vbd/1/51728";
    assert_eq!(r(&mut b, &format!("{be}/mode")), "r");
    assert_eq!(r(&mut b, &format!("{be}/discard-enable")), "0");
    assert_eq!(r(&mut b, &format!("{be}/physical-device")), "7:1");
    let be = "/local/domain/0/backend/vbd/1/51744";
    assert_eq!(r(&mut b, &format!("{be}/physical-device")), "fe:0");
    assert_eq!(r(&mut b, &format!("{be}/physical-device-path")), "/dev/vda");
    assert_eq!(read(&mut b, &format!("{be}/node")), None);
    assert_eq!(
        loops(&mut b),
        [(0, IMG.to_string(), false), (1, RO.to_string(), true)]
    );
    // Each under the block script's lock.
    assert_eq!(b.host().locks, ["block", "block", "block"]);
    // Only then was the domain started.
    assert_eq!(dom(&b, 1).unwrap().info.flags & XEN_DOMINF_paused, 0);
}

#[test]
fn create_writes_vif_entries_and_joins_the_bridge() {
    let mut b = dev_backend();
    let o = create(&mut b, VIFS);
    assert_eq!(o.code, 0, "{o:?}\n{}", b.host().err);
    let be = "/local/domain/0/backend/vif/1/0";
    let fe = "/local/domain/1/device/vif/0";
    for (k, v) in [
        ("frontend", fe),
        ("frontend-id", "1"),
        ("online", "1"),
        ("state", "2"),
        ("script", "/etc/xen/scripts/vif-bridge"),
        ("mac", "00:16:3e:00:00:02"),
        ("bridge", "xenbr0"),
        ("handle", "0"),
        ("type", "vif"),
        ("hotplug-status", "connected"),
    ] {
        assert_eq!(r(&mut b, &format!("{be}/{k}")), v, "{k}");
    }
    for (k, v) in [
        ("backend", be),
        ("backend-id", "0"),
        ("state", "1"),
        ("handle", "0"),
        ("mac", "00:16:3e:00:00:02"),
        ("trusted", "1"),
        ("mtu", "1400"),
    ] {
        assert_eq!(r(&mut b, &format!("{fe}/{k}")), v, "{k}");
    }
    assert_eq!(perms(&mut b, be), "n0 r1");
    assert_eq!(perms(&mut b, fe), "n1 r0");
    assert_eq!(perms(&mut b, &format!("{fe}/mac")), "n1 r0");
    assert_eq!(perms(&mut b, &format!("{fe}/mtu")), "n0 r1");
    // The second vif: defaults, a random Xen MAC, its ip.
    let be = "/local/domain/0/backend/vif/1/1";
    assert_eq!(r(&mut b, &format!("{be}/bridge")), "xenbr0");
    assert_eq!(r(&mut b, &format!("{be}/ip")), "192.0.2.9");
    assert_eq!(r(&mut b, &format!("{be}/handle")), "1");
    let mac = r(&mut b, &format!("{be}/mac"));
    assert!(mac.starts_with("00:16:3e:"), "{mac}");
    assert!(u8::from_str_radix(&mac[9..11], 16).unwrap() < 0x80);
    // vif-bridge's work: on the bridge, up, with the bridge's MTU.
    let want = FakeNetif {
        mtu: 1400,
        bridge: false,
        up: true,
        master: Some("xenbr0".into()),
    };
    assert_eq!(b.host().netifs.get("vif1.0"), Some(&want));
    assert_eq!(b.host().netifs.get("vif1.1"), Some(&want));
}

#[test]
fn a_missing_image_fails_before_the_domain_exists() {
    let mut b = dev_backend();
    let o = create(
        &mut b,
        "disk = [ '/var/lib/vm/vm1.img,raw,xvda,w', '/var/lib/vm/missing.img,raw,xvdb,w' ]\n",
    );
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr,
        "libxl: error: libxl_device.c:437:libxl__device_disk_set_backend: Disk vdev=xvdb failed to stat: \
         /var/lib/vm/missing.img: No such file or directory\n\
         libxl: error: libxl_create.c:1316:initiate_domain_create: Unable to set disk defaults for disk 1\n"
    );
    assert_eq!(x(&b).domains.len(), 1, "no domain made");
    assert!(loops(&mut b).is_empty());
    no_device_entries(&mut b, 1);
    // Other refusals, also before anything is made.
    for (disk, msg) in [
        ("'/var/lib/vm/vm1.img,qcow2,xvda'", "format=qcow2"),
        ("'/var/lib/vm/vm1.img,,hdc,cdrom'", "devtype=cdrom"),
        (
            "'/var/lib/vm/vm1.img,,xvda,backendtype=qdisk'",
            "backendtype=qdisk",
        ),
        (
            "'/var/lib/vm/vm1.img,,floppy'",
            "virtual disk identifier floppy",
        ),
        (
            "'/var/lib/vm/vm1.img,,xvda', '/var/lib/vm/ro.img,,51712'",
            "given twice",
        ),
    ] {
        let o = create(&mut b, &format!("disk = [ {disk} ]\n"));
        assert_eq!(o.code, 1, "{disk}");
        assert!(o.stderr.contains(msg), "{disk}: {}", o.stderr);
        assert_eq!(x(&b).domains.len(), 1, "{disk}");
    }
}

#[test]
fn a_failure_after_the_disks_rolls_everything_back() {
    let mut b = dev_backend();
    let o = create(&mut b, &format!("{DISKS}vif = [ 'bridge=xenbr1' ]\n"));
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.starts_with(
            "libxl: error: libxl_device.c:1319:device_hotplug_child_death_cb: script: \
             Could not find bridge device xenbr1\n\
             libxl: error: libxl_create.c:1919:domcreate_attach_devices: Domain 1:unable to add vif devices\n"
        ),
        "{}",
        o.stderr
    );
    assert!(o
        .stderr
        .ends_with("libxl: error: Domain 1:cannot build the domain; it was destroyed\n"));
    assert_eq!(x(&b).domains.len(), 1, "destroyed");
    assert!(loops(&mut b).is_empty(), "{:?}", loops(&mut b));
    no_device_entries(&mut b, 1);
    assert_eq!(read(&mut b, "/local/domain/0/backend"), None);
    assert_eq!(read(&mut b, "/local/domain/1"), None);
}

#[test]
fn a_backend_that_never_answers_times_out() {
    let mut b = dev_backend();
    b.host().on_sleep = None;
    let before = b.host().clock;
    let o = create(&mut b, "disk = [ '/var/lib/vm/vm1.img,raw,xvda,w' ]\n");
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.starts_with(
            "libxl: error: Domain 1:backend /local/domain/0/backend/vbd/1/51712 did not reach \
             InitWait (2) in 10 s (state: 1): is xen-blkback loaded in dom0?\n"
        ),
        "{}",
        o.stderr
    );
    // Bounded: the wait only (a backend no driver took needs no closing).
    let took = b.host().clock - before;
    assert!(took.as_secs() <= 12, "{took:?}");
    assert_eq!(x(&b).domains.len(), 1);
    assert!(loops(&mut b).is_empty());
    no_device_entries(&mut b, 1);
}

#[test]
fn destroy_closes_the_backends_and_releases_the_loops() {
    let mut b = dev_backend();
    let o = create(&mut b, &format!("{DISKS}{VIFS}"));
    assert_eq!(o.code, 0, "{o:?}\n{}", b.host().err);
    assert_eq!(loops(&mut b).len(), 2);
    // blkback lets go of a loop device a little after it closed.
    b.host().loop_busy = 2;
    let o = xl(&mut b, "destroy vm");
    assert_eq!(o.code, 0, "{o:?}\n{}", b.host().err);
    assert!(loops(&mut b).is_empty());
    no_device_entries(&mut b, 1);
    assert_eq!(read(&mut b, "/local/domain/0/backend"), None);
    assert_eq!(read(&mut b, "/libxl/1"), None);
    assert_eq!(b.host().netifs["vif1.0"].master, None);
    assert!(!b.host().err.contains("error"), "{}", b.host().err);
    // The backends were told to close (online 0) before they went: seen in
    // the request log as writes of "online".
    let log = &b.host().xs.log;
    assert!(log
        .iter()
        .any(|l| l.0 == XS_WRITE && l.2 == "/local/domain/0/backend/vbd/1/51712/online"));
}

#[test]
fn a_loop_device_reused_meanwhile_is_left_alone() {
    let mut b = dev_backend();
    assert_eq!(
        create(&mut b, "disk = [ '/var/lib/vm/vm1.img,,xvda' ]\n").code,
        0
    );
    // loop0 went away and now serves another file.
    b.host().loops.insert(0, (EXTRA.into(), false));
    b.host().files.insert(
        "/sys/block/loop0/loop/backing_file".into(),
        format!("{EXTRA}\n").into_bytes(),
    );
    assert_eq!(xl(&mut b, "destroy vm").code, 0);
    assert_eq!(loops(&mut b), [(0, EXTRA.to_string(), false)]);
    no_device_entries(&mut b, 1);
    // Bound to its own image, it is released.
    assert_eq!(
        create(&mut b, "disk = [ '/var/lib/vm/vm1.img,,xvda' ]\n").code,
        0
    );
    b.host().files.insert(
        "/sys/block/loop1/loop/backing_file".into(),
        format!("{IMG}\n").into_bytes(),
    );
    assert_eq!(loops(&mut b).len(), 2);
    assert_eq!(xl(&mut b, "destroy vm").code, 0);
    assert_eq!(loops(&mut b), [(0, EXTRA.to_string(), false)]);
}

#[test]
fn the_monitor_rebuilds_and_tears_down_devices() {
    use super::fake::FakeEvent;
    let mut b = dev_backend();
    let text = config_text(&format!("{DISKS}vif = [ 'bridge=xenbr0' ]\n"));
    let c = crate::config::Config::parse(CFG, text.as_bytes()).unwrap();
    let cfg = crate::domain::DomainConfig::from_config(&c).unwrap().config;
    let domid = b.build(&cfg, false).unwrap();
    // The random MAC is what a restart keeps.
    let mac = r(&mut b, "/libxl/1/device/vif/0/mac");
    let mut again = cfg.clone();
    b.keep_macs(domid, &mut again);
    assert_eq!(again.nics[0].mac, crate::devspec::parse_mac(&mac));
    assert_eq!(again.nics[0].bridge.as_deref(), Some("xenbr0"));
    // Reboot (a new domain with the same devices), then power off.
    super::domu_tests::xm(&mut b)
        .script
        .push((3, 1, FakeEvent::Shutdown(1)));
    super::domu_tests::xm(&mut b)
        .script
        .push((3, 3, FakeEvent::Shutdown(0)));
    assert_eq!(b.monitor(domid, &cfg), 0);
    let log = b.host().err.clone();
    assert!(log.ends_with("Done. Exiting now\n"), "{log}");
    assert!(!log.contains("error"), "{log}");
    assert!(loops(&mut b).is_empty());
    for id in 1..=3 {
        no_device_entries(&mut b, id);
    }
    assert_eq!(read(&mut b, "/local/domain/0/backend"), None);
    // Both builds made the vif.
    let writes = b
        .host()
        .xs
        .log
        .iter()
        .filter(|l| l.0 == XS_WRITE && l.2.ends_with("/device/vif/0/mac"))
        .count();
    assert_eq!(
        writes, 4,
        "two builds, each: the frontend and the /libxl record"
    );
}

#[test]
fn block_attach_list_detach() {
    let mut b = dev_backend();
    assert_eq!(create(&mut b, "").code, 0);
    let o = xl(&mut b, &format!("block-attach vm {EXTRA},raw,xvdc,r"));
    assert_eq!(o, Default::default(), "{}", b.host().err);
    assert_eq!(loops(&mut b), [(0, EXTRA.to_string(), true)]);
    let be = "/local/domain/0/backend/vbd/1/51744";
    assert_eq!(r(&mut b, &format!("{be}/hotplug-status")), "connected");
    // Several arguments make one spec, as xl's block-attach.
    let o = xl(&mut b, &format!("block-attach vm {IMG} raw xvdd w"));
    assert_eq!(o.code, 0, "{o:?}");
    // The guest's frontend connected one of them.
    let fe = "/local/domain/1/device/vbd/51744";
    let h = b.host();
    h.xs.write(XBT_NULL, &format!("{fe}/state"), "4").unwrap();
    h.xs.write(XBT_NULL, &format!("{fe}/event-channel"), "9")
        .unwrap();
    h.xs.write(XBT_NULL, &format!("{fe}/ring-ref"), "8")
        .unwrap();
    let o = xl(&mut b, "block-list vm 1 nosuch");
    assert_eq!(
        o.stdout,
        "Vdev  BE  handle state evt-ch ring-ref BE-path                       \n\
         51744 0   1      4     9      8        /local/domain/0/backend/vbd/1/51744\n\
         51760 0   1      1     -1     -1       /local/domain/0/backend/vbd/1/51760\n\
         51744 0   1      4     9      8        /local/domain/0/backend/vbd/1/51744\n\
         51760 0   1      1     -1     -1       /local/domain/0/backend/vbd/1/51760\n"
    );
    assert_eq!(o.stderr, "nosuch is an invalid domain identifier\n");
    assert_eq!(o.code, 0);
    // The same vdev twice.
    let o = xl(&mut b, &format!("block-attach vm {RO},raw,xvdc,r"));
    assert_eq!(
        o.stderr,
        "libxl: error: libxl_device.c:1980:libxl__device_add_async: Domain 1:device already exists in xenstore\n\
         libxl_device_disk_add failed.\n"
    );
    assert_eq!(loops(&mut b).len(), 2);
    // Detach by name and by number; the frontend closes in time.
    assert_eq!(xl(&mut b, "block-detach vm xvdc").code, 0);
    assert_eq!(xl(&mut b, "block-detach vm 51760").code, 0);
    assert!(loops(&mut b).is_empty());
    no_device_entries(&mut b, 1);
    let o = xl(&mut b, "block-list vm");
    assert_eq!(o.stdout.lines().count(), 1);
    let o = xl(&mut b, "block-detach vm xvdc");
    assert_eq!(o.stderr, "Error: Device xvdc not connected.\n");
    assert_eq!(o.code, 1);
    // Bad specs and domains.
    let o = xl(&mut b, "block-attach vm /x,raw");
    assert_eq!(
        o.stderr,
        "command line: config parsing error in disk specification: no vdev specified in `/x,raw'\n"
    );
    let o = xl(&mut b, "block-attach nosuch /x,raw,xvdc");
    assert_eq!(o.stderr, "nosuch is an invalid domain identifier\n");
    let o = xl(&mut b, "block-attach 7 /var/lib/vm/ro.img,raw,xvdc");
    assert_eq!(
        o.stderr,
        "libxl: error: libxl_dom.c:37:libxl__domain_type: unable to get domain type for domid=7\n\
         libxl_device_disk_add failed.\n"
    );
    let o = xl(&mut b, "block-attach vm /var/lib/vm/nope.img,raw,xvdc");
    assert!(
        o.stderr.contains("failed to stat: /var/lib/vm/nope.img"),
        "{}",
        o.stderr
    );
    no_device_entries(&mut b, 1);
}

#[test]
fn a_detach_the_guest_ignores() {
    let mut b = dev_backend();
    assert_eq!(create(&mut b, "").code, 0);
    assert_eq!(
        xl(&mut b, &format!("block-attach vm {EXTRA},,xvdc")).code,
        0
    );
    // The guest keeps the disk: the backend never closes.
    b.host().on_sleep = None;
    let o = xl(&mut b, "block-detach vm xvdc");
    assert_eq!(
        o.stderr,
        "libxl: error: libxl_device.c:1163:device_backend_callback: Domain 1:unable to remove device \
         with path /local/domain/0/backend/vbd/1/51744\nlibxl_device_disk_safe_remove failed.\n"
    );
    assert_eq!(loops(&mut b).len(), 1, "kept");
    assert_eq!(r(&mut b, "/local/domain/0/backend/vbd/1/51744/state"), "5");
    // -f takes it away regardless.
    let o = xl(&mut b, "block-detach -f vm xvdc");
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.ends_with("libxl_device_disk_destroy failed.\n"),
        "{}",
        o.stderr
    );
    assert!(loops(&mut b).is_empty());
    no_device_entries(&mut b, 1);
}

#[test]
fn sharing_rules_of_the_block_script() {
    let mut b = dev_backend();
    assert_eq!(create(&mut b, DISKS).code, 0);
    let o = create(&mut b, "name = \"vm2\"\n");
    assert_eq!(o.code, 0, "{o:?}");
    let refused = |b: &mut B, spec: &str, msg: &str| {
        let o = xl(b, &format!("block-attach vm2 {spec}"));
        assert_eq!(
            o.stderr,
            format!(
                "libxl: error: libxl_device.c:1319:device_hotplug_child_death_cb: script: {msg}\n\
                 libxl_device_disk_add failed.\n"
            ),
            "{spec}"
        );
        no_device_entries(b, 2);
    };
    refused(
        &mut b,
        &format!("{IMG},raw,xvdc,w"),
        "File /var/lib/vm/vm1.img is loopback-mounted through 7:0,\nwhich is mounted in a guest domain,\n\
         and so cannot be mounted now.",
    );
    refused(
        &mut b,
        &format!("{IMG},raw,xvdc,r"),
        "File /var/lib/vm/vm1.img is loopback-mounted through 7:0,\nwhich is mounted read-write in a \
         guest domain,\nand so cannot be mounted read-only now.",
    );
    refused(
        &mut b,
        &format!("{RO},raw,xvdc,w"),
        "File /var/lib/vm/ro.img is loopback-mounted through 7:1,\nwhich is mounted in a guest domain,\n\
         and so cannot be mounted now.",
    );
    refused(
        &mut b,
        "/dev/vda,raw,xvdc,w",
        "Device /dev/vda is mounted in a guest domain,\nand so cannot be mounted now.",
    );
    assert_eq!(loops(&mut b).len(), 2);
    // Read-only beside read-only is fine.
    let o = xl(&mut b, &format!("block-attach vm2 {RO},raw,xvdc,r"));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(loops(&mut b).len(), 3);
    // A read-only file is not served read-write.
    let mut i: FileInfo = b.host().stat(EXTRA).unwrap();
    i.mode = 0o444;
    b.host().stats.insert(EXTRA.into(), i);
    let o = xl(&mut b, &format!("block-attach vm2 {EXTRA},raw,xvdd,w"));
    assert!(o.stderr.contains(
        "script: File /var/lib/vm/extra.img is read-only, and so I will not\nmount it read-write in a guest domain.\n"
    ), "{}", o.stderr);
    // dom0's own mounts.
    b.host().files.insert(
        "/proc/mounts".into(),
        b"/dev/vda / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n".to_vec(),
    );
    assert_eq!(xl(&mut b, "destroy vm").code, 0);
    let o = xl(&mut b, "block-attach vm2 /dev/vda,raw,xvdd,r");
    assert!(o.stderr.contains(
        "script: Device /dev/vda is mounted read-write in the privileged domain,\nand so cannot be mounted read-only by a guest.\n"
    ), "{}", o.stderr);
}

#[test]
fn network_attach_list_detach() {
    let mut b = dev_backend();
    assert_eq!(
        create(&mut b, "vif = [ 'mac=00:16:3e:00:00:02' ]\n").code,
        0
    );
    let o = xl(
        &mut b,
        "network-attach vm bridge=xenbr0 mac=00:16:3e:00:00:12",
    );
    assert_eq!(o, Default::default(), "{}", b.host().err);
    let be = "/local/domain/0/backend/vif/1/1";
    assert_eq!(r(&mut b, &format!("{be}/mac")), "00:16:3e:00:00:12");
    assert_eq!(r(&mut b, &format!("{be}/hotplug-status")), "connected");
    assert_eq!(b.host().netifs["vif1.1"].master.as_deref(), Some("xenbr0"));
    let fe = "/local/domain/1/device/vif/0";
    let h = b.host();
    for (k, v) in [
        ("state", "4"),
        ("event-channel", "5"),
        ("tx-ring-ref", "768"),
        ("rx-ring-ref", "769"),
    ] {
        h.xs.write(XBT_NULL, &format!("{fe}/{k}"), v).unwrap();
    }
    let o = xl(&mut b, "network-list vm");
    assert_eq!(
        o.stdout,
        "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       \n\
         0   0  00:16:3e:00:00:02     0     4      5   768/769         /local/domain/0/backend/vif/1/0\n\
         1   0  00:16:3e:00:00:12     1     1     -1    -1/-1          /local/domain/0/backend/vif/1/1\n"
    );
    let o = xl(&mut b, "network-list vm nosuch");
    assert_eq!(o.code, 1);
    assert_eq!(o.stderr, "nosuch is an invalid domain identifier (rc=-6)\n");
    // By id, then by MAC.
    assert_eq!(xl(&mut b, "network-detach vm 1").code, 0);
    assert_eq!(read(&mut b, be), None);
    assert_eq!(b.host().netifs["vif1.1"].master, None);
    let o = xl(&mut b, "network-detach vm 00:16:3e:00:00:02");
    assert_eq!(o.code, 0, "{o:?}");
    no_device_entries(&mut b, 1);
    let o = xl(&mut b, "network-detach vm 1");
    assert_eq!((o.stderr.as_str(), o.code), ("Unknown device 1.\n", 1));
    let o = xl(&mut b, "network-detach vm 00:16:3e:00:00:99");
    assert_eq!(o.stderr, "Unknown device 00:16:3e:00:00:99.\n");
    // xl's argument errors; a missing bridge.
    let o = xl(&mut b, "network-attach vm colour=red");
    assert_eq!(
        (o.stderr.as_str(), o.code),
        ("unrecognized argument `colour=red'\n", 1)
    );
    let o = xl(&mut b, "network-attach vm bridge=nope");
    assert_eq!(
        o.stderr,
        "libxl: error: libxl_device.c:1319:device_hotplug_child_death_cb: script: Could not find bridge device nope\n\
         libxl_device_nic_add failed.\n"
    );
    no_device_entries(&mut b, 1);
    // The next id after the highest one in use.
    assert_eq!(xl(&mut b, "network-attach vm").code, 0);
    assert_eq!(xl(&mut b, "network-attach vm devid=5").code, 0);
    assert_eq!(xl(&mut b, "network-attach vm").code, 0);
    assert_eq!(ls(&mut b, "/libxl/1/device/vif"), ["0", "5", "6"]);
}

#[test]
fn hotplug_usage() {
    let parse = |line: &str| {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        crate::cli::parse(&argv)
    };
    let e = parse("block-attach vm").unwrap_err();
    assert_eq!(e.code, 2);
    assert!(e
        .stderr
        .starts_with("'xl block-attach' requires at least 2 arguments."));
    assert_eq!(parse("network-detach vm").unwrap_err().code, 2);
    assert_eq!(parse("block-list").unwrap_err().code, 2);
    let i = parse("block-detach -f vm xvda").unwrap();
    assert_eq!(
        i.command,
        crate::cli::Command::BlockDetach {
            force: true,
            domain: "vm".into(),
            vdev: "xvda".into()
        }
    );
}
