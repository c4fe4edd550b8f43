//! The aya loader, without the kernel's BTF when the object needs none.
//!
//! aya 0.14's `EbpfLoader::new()` always reads and parses the kernel's BTF
//! (`/sys/kernel/btf/vmlinux`, several MB, ~100k types), for CO-RE relocations; `.btf(None)`
//! only drops it afterwards. Our object has no CO-RE relocation, and that parse was the largest
//! step of a cold start (tens of ms, before any program is verified). So the loader is made
//! on a short-lived thread that may not read files (a Landlock domain of that thread only: no
//! privilege needed, the rest of the process is untouched): the read fails at once and aya
//! goes on without BTF, exactly as with `.btf(None)`. Where Landlock is unavailable, or if the
//! object ever gains CO-RE relocations, the loader is aya's default.
use aya::EbpfLoader;

/// Landlock's `LANDLOCK_ACCESS_FS_READ_FILE`.
const ACCESS_FS_READ_FILE: u64 = 1 << 2;

/// The loader for `object`: without the kernel's BTF if the object needs none (see the
/// module docs).
pub(super) fn loader(object: &[u8]) -> EbpfLoader<'static> {
    if core_relo_len(object) == Some(0) {
        if let Some(mut l) = without_kernel_btf() {
            l.btf(None);
            return l;
        }
    }
    EbpfLoader::new()
}

fn without_kernel_btf() -> Option<EbpfLoader<'static>> {
    std::thread::scope(|sc| {
        sc.spawn(|| {
            deny_file_reads().ok()?;
            Some(EbpfLoader::new())
        })
        .join()
        .ok()
        .flatten()
    })
}

/// Restricts the calling thread (only) from reading any file.
fn deny_file_reads() -> std::io::Result<()> {
    let err = std::io::Error::last_os_error;
    // Landlock needs no_new_privs without CAP_SYS_ADMIN; it is per thread too.
    // SAFETY: plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(err());
    }
    // struct landlock_ruleset_attr, its first field (ABI 1): handled_access_fs.
    let attr: u64 = ACCESS_FS_READ_FILE;
    // SAFETY: a valid pointer to the attribute and its size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const u64,
            std::mem::size_of::<u64>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(err());
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    // No rule: reading any file is denied to this thread from now on.
    // SAFETY: plain syscall on our fd.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_restrict_self,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            0u32,
        )
    };
    if rc != 0 {
        return Err(err());
    }
    Ok(())
}

/// The length of the CO-RE relocation records in the object's `.BTF.ext` (0 when it has none),
/// or `None` if the object cannot be read as a little-endian ELF64.
fn core_relo_len(obj: &[u8]) -> Option<u32> {
    let u32_at = |o: usize| Some(u32::from_le_bytes(obj.get(o..o + 4)?.try_into().ok()?));
    let Some(off) = btf_ext(obj)? else {
        return Some(0);
    };
    // struct btf_ext_header: magic, version, flags, hdr_len, func_info_off/len,
    // line_info_off/len, then (hdr_len >= 32) core_relo_off/len.
    if u32_at(off + 4)? < 32 {
        return Some(0);
    }
    u32_at(off + 28)
}

/// Where the object's `.BTF.ext` section starts (`Some(None)`: it has none).
fn btf_ext(obj: &[u8]) -> Option<Option<usize>> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(obj.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(obj.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(obj.get(o..o + 8)?.try_into().ok()?) as usize);
    if obj.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (shoff, shentsize) = (u64_at(0x28)?, usize::from(u16_at(0x3a)?));
    let (shnum, shstrndx) = (usize::from(u16_at(0x3c)?), usize::from(u16_at(0x3e)?));
    let sh = |i: usize| shoff + i * shentsize;
    let names = u64_at(sh(shstrndx) + 0x18)?;
    for i in 0..shnum {
        let name = names + u32_at(sh(i))? as usize;
        if obj.get(name..)?.starts_with(b".BTF.ext\0") {
            return Some(Some(u64_at(sh(i) + 0x18)?));
        }
    }
    Some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_has_no_core_relocation() {
        // If this fails, the object gained CO-RE relocations: the loader then parses the
        // kernel's BTF again (correct, but a cold start is tens of ms slower).
        let obj = super::super::EBPF_OBJECT;
        if !obj.is_empty() {
            assert_eq!(core_relo_len(obj), Some(0));
            // The same object with CO-RE records is seen as needing the kernel's BTF.
            let off = btf_ext(obj)
                .unwrap()
                .expect("the object has a .BTF.ext section");
            let mut patched = obj.to_vec();
            patched[off + 28..off + 32].copy_from_slice(&16u32.to_le_bytes());
            assert_eq!(core_relo_len(&patched), Some(16));
        }
        assert_eq!(core_relo_len(b"not an ELF"), None);
    }
}
