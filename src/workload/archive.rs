//! Unpacks the operator's Cloud Code archive (a charm resource, a `.tar.gz` or a `.zip`) into
//! a fresh scratch directory. Whoever can attach a resource can hand the charm any bytes, and
//! the charm unpacks as root, so the archive is hostile input and nothing in it is trusted:
//! every name is checked before anything is written; only regular files, directories and
//! symlinks that stay inside come out; hard links become copies; nothing is ever written
//! through a symlink (the archive's symlinks are made last); files get plain modes and the
//! unpacking user as owner; and bytes and entries are counted as they stream, so a bomb stops
//! at the limit instead of after filling the disk. An archive that breaks a rule is refused
//! whole with a one-line reason naming the entry; what to do with the directory afterwards
//! (use it, or delete it after a refusal) is the caller's.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

use crate::text::{one_line, quote};

/// Bounds on what an archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes written in all: file contents, hard-link copies and symlink targets.
    pub max_bytes: u64,
    /// Entries of any kind (files, directories, links).
    pub max_entries: u64,
}

/// The bounds the charm applies: 512 MiB unpacked, 100 000 entries.
pub const LIMITS: Limits = Limits {
    max_bytes: 512 * 1024 * 1024,
    max_entries: 100_000,
};

/// What was unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// Regular files written, hard-link copies included.
    pub files: u64,
    /// Bytes counted against [`Limits::max_bytes`].
    pub bytes: u64,
}

/// Why an archive is refused: the archive's fault, never the machine's. `Display` gives a
/// short, one-line reason for a status message; entry names in it are quoted and cut.
#[derive(Debug)]
pub enum Refused {
    /// The first bytes are neither gzip's nor zip's.
    NotAnArchive,
    /// The archive is damaged or truncated, or uses what the charm does not read (a zip
    /// compression other than stored and deflate, for one). The text is the reader's.
    Unreadable(String),
    /// Unpacking would write more than `max_bytes`.
    TooBig { max_bytes: u64 },
    /// The archive has more than `max_entries` entries.
    TooMany { max_entries: u64 },
    /// A `.tar.gz` whose tar stream is mostly not file contents (huge headers, or data on
    /// entries that have none): a way to make the charm decompress without end.
    Overhead,
    /// An entry's name is an absolute path.
    Absolute { entry: String },
    /// An entry's name has a `..` component.
    Leaves { entry: String },
    /// An entry's name or link target cannot be a file name here: `why` says which and how.
    BadName { entry: String, why: String },
    /// An entry is not a regular file, directory or link: `kind` is "a device", "a FIFO"…
    Kind { entry: String, kind: &'static str },
    /// An entry has the setuid or setgid bit.
    SetId { entry: String },
    /// A zip entry is encrypted.
    Encrypted { entry: String },
    /// An entry's path was already given by an earlier entry (`earlier` is what that was).
    Duplicate {
        entry: String,
        earlier: &'static str,
    },
    /// An entry lies under an earlier entry that is not a directory (a symlink, a file).
    Under {
        entry: String,
        parent: String,
        earlier: &'static str,
    },
    /// A symlink or hard link points outside the archive (absolute, or up past its root).
    LinkLeaves { entry: String, target: String },
    /// A hard link's target is not a regular file unpacked before it.
    LinkMissing { entry: String, target: String },
    /// A symlink goes through too many symlinks to resolve (a loop, most likely).
    LinkLoop { entry: String },
    /// The symlinks point through one another so much that checking them would take too long.
    Tangled,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = |s: &str| quote(s, 60);
        match self {
            Refused::NotAnArchive => write!(f, "not a .tar.gz or .zip archive"),
            Refused::Unreadable(why) => write!(f, "the archive cannot be read: {why}"),
            Refused::TooBig { max_bytes } => write!(f, "unpacks to more than {}", size(*max_bytes)),
            Refused::TooMany { max_entries } => write!(f, "has more than {max_entries} entries"),
            Refused::Overhead => write!(
                f,
                "holds too much besides file contents (tar headers, padding, skipped data)"
            ),
            Refused::Absolute { entry } => write!(f, "entry {} is an absolute path", q(entry)),
            Refused::Leaves { entry } => write!(f, "entry {} leaves the archive", q(entry)),
            Refused::BadName { entry, why } => write!(f, "entry {} {why}", q(entry)),
            Refused::Kind { entry, kind } => write!(f, "entry {} is {kind}", q(entry)),
            Refused::SetId { entry } => write!(f, "entry {} is setuid or setgid", q(entry)),
            Refused::Encrypted { entry } => write!(f, "entry {} is encrypted", q(entry)),
            Refused::Duplicate { entry, earlier } => {
                write!(
                    f,
                    "entry {} is already in the archive as a {earlier}",
                    q(entry)
                )
            }
            Refused::Under {
                entry,
                parent,
                earlier,
            } => write!(
                f,
                "entry {} lies under the {earlier} {}",
                q(entry),
                q(parent)
            ),
            Refused::LinkLeaves { entry, target } => write!(
                f,
                "link {} points to {}, outside the archive",
                q(entry),
                q(target)
            ),
            Refused::LinkMissing { entry, target } => write!(
                f,
                "hard link {} points to {}, not a file unpacked before it",
                q(entry),
                q(target)
            ),
            Refused::LinkLoop { entry } => {
                write!(f, "symlink {} goes through too many symlinks", q(entry))
            }
            Refused::Tangled => write!(
                f,
                "its symlinks point through one another too much to check"
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// A byte count for a message: whole MiB or KiB where it is one.
fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Unpacks `archive` (a `.tar.gz` or a `.zip`, told apart by its first bytes, never by its
/// name) into `dest`, an empty directory the caller made. `Ok(Err(_))` is a refusal: the
/// archive broke a rule and `dest` holds part of it, for the caller to delete; nothing was
/// ever written outside `dest`. `Err(_)` is a fault that is not the archive's (a full disk,
/// `dest` not a directory, an unreadable archive file): the caller treats it as a bug.
pub fn unpack(
    archive: &Path,
    dest: &Path,
    limits: &Limits,
) -> anyhow::Result<Result<Unpacked, Refused>> {
    match unpack_into(archive, dest, limits) {
        Ok(done) => Ok(Ok(done)),
        Err(Stop::Refused(why)) => Ok(Err(why)),
        Err(Stop::Fault(e)) => Err(e.context(format!(
            "unpacking {} into {}",
            archive.display(),
            dest.display()
        ))),
    }
}

/// Why unpacking stopped early: the archive's fault, or the machine's.
enum Stop {
    Refused(Refused),
    Fault(anyhow::Error),
}

impl From<Refused> for Stop {
    fn from(why: Refused) -> Self {
        Stop::Refused(why)
    }
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Self {
        Stop::Fault(e)
    }
}

type Step<T> = Result<T, Stop>;

fn unpack_into(archive: &Path, dest: &Path, limits: &Limits) -> Step<Unpacked> {
    let meta = fs::symlink_metadata(dest).with_context(|| format!("{}", dest.display()))?;
    if !meta.file_type().is_dir() {
        return Err(anyhow::anyhow!("{} is not a directory", dest.display()).into());
    }
    let mut file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow::Error::new(e).context("reading the archive").into()),
        }
    }
    file.seek(SeekFrom::Start(0))
        .context("rewinding the archive")?;
    let watch = std::rc::Rc::new(Watch::default());
    let source = Source {
        inner: file,
        watch: watch.clone(),
    };
    let mut out = Writer::new(dest, limits);
    if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        unpack_tar_gz(source, &watch, &mut out)?;
    } else if got == 4 && (magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06") {
        unpack_zip(source, &watch, &mut out)?;
    } else {
        return Err(Refused::NotAnArchive.into());
    }
    out.finish()
}

// Reading: telling the archive's faults from the machine's, and bounding the tar stream.

/// What a tar stream holds besides file contents (headers, padding, pax records, data on
/// entries that should have none) is bounded too, as the tar reader must read it all and keeps
/// metadata in memory: at most this much between two entries…
const MAX_GAP: u64 = 16 * 1024 * 1024;
/// …and at most this much plus [`PER_ENTRY`] for each entry in all.
const SLACK: u64 = 16 * 1024 * 1024;
/// See [`SLACK`]: a header, its padding and a pax record fit in it many times over.
const PER_ENTRY: u64 = 4096;

/// What the readers saw, shared between them and the unpacking loop.
#[derive(Default)]
struct Watch {
    /// The first error reading the archive file itself: the machine's fault, not the archive's.
    source_error: RefCell<Option<String>>,
    /// Decompressed tar bytes read so far.
    read: Cell<u64>,
    /// Of those, the bytes handed out as file contents.
    content: Cell<u64>,
    /// Tar entries seen so far.
    entries: Cell<u64>,
    /// `read - content` when the last entry began.
    mark: Cell<u64>,
    /// Whether the tar stream broke the bounds above.
    overhead: Cell<bool>,
}

impl Watch {
    /// What a read error from the archive's readers means.
    fn stop(&self, e: io::Error) -> Stop {
        if let Some(why) = self.source_error.borrow_mut().take() {
            return anyhow::anyhow!("reading the archive: {why}").into();
        }
        if self.overhead.get() {
            return Refused::Overhead.into();
        }
        Refused::Unreadable(one_line(&e.to_string(), 120)).into()
    }

    /// A tar entry begins.
    fn entry(&self) {
        self.entries.set(self.entries.get() + 1);
        self.mark
            .set(self.read.get().saturating_sub(self.content.get()));
    }
}

/// The archive file, remembering any error reading it (a failing disk). A failed seek is
/// not remembered: on a regular file only an offset out of range fails, and offsets come
/// from the archive.
struct Source {
    inner: File,
    watch: std::rc::Rc<Watch>,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        if let Err(e) = &r {
            if e.kind() != io::ErrorKind::Interrupted {
                self.watch
                    .source_error
                    .borrow_mut()
                    .get_or_insert_with(|| e.to_string());
            }
        }
        r
    }
}

impl Seek for Source {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// The decompressed tar stream, counted and bounded (see [`MAX_GAP`]).
struct Metered<R> {
    inner: R,
    watch: std::rc::Rc<Watch>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let w = &self.watch;
        w.read.set(w.read.get() + n as u64);
        let overhead = w.read.get().saturating_sub(w.content.get());
        if overhead.saturating_sub(w.mark.get()) > MAX_GAP
            || overhead > SLACK.saturating_add(PER_ENTRY.saturating_mul(w.entries.get()))
        {
            w.overhead.set(true);
            return Err(io::Error::other("too much besides file contents"));
        }
        Ok(n)
    }
}

/// A tar entry's contents, counted as contents (not overhead) as they are read.
struct Contents<'w, R> {
    inner: R,
    watch: &'w Watch,
}

impl<R: Read> Read for Contents<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.watch.content.set(self.watch.content.get() + n as u64);
        Ok(n)
    }
}

// The two formats: each turns its entries into calls on the Writer.

/// Unix file types, as in a zip entry's external attributes.
const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

fn unpack_tar_gz(source: Source, watch: &std::rc::Rc<Watch>, out: &mut Writer) -> Step<()> {
    use tar::EntryType as E;
    let stream = Metered {
        inner: flate2::read::MultiGzDecoder::new(source),
        watch: watch.clone(),
    };
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(|e| watch.stop(e))? {
        let mut entry = entry.map_err(|e| watch.stop(e))?;
        let kind = entry.header().entry_type();
        // Metadata for the whole archive (`git archive` writes the commit there).
        if kind == E::XGlobalHeader {
            continue;
        }
        watch.entry();
        let name = out.entry(&entry.path_bytes())?;
        let mode = entry
            .header()
            .mode()
            .map_err(|e| Refused::Unreadable(one_line(&e.to_string(), 120)))?;
        refuse_set_id(&name, mode)?;
        // Old tars mark a directory by a trailing slash alone.
        let slash = name.shown.ends_with('/');
        match kind {
            E::Directory => out.directory(&name)?,
            E::Regular | E::Continuous if slash => out.directory(&name)?,
            E::Regular | E::Continuous => {
                let mut contents = Contents {
                    inner: &mut entry,
                    watch,
                };
                out.file(&name, mode & 0o111 != 0, &mut contents, &|e| watch.stop(e))?;
            }
            E::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                out.symlink(&name, &target)?;
            }
            E::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                out.hard_link(&name, &target)?;
            }
            E::Char | E::Block => return Err(kind_refused(name, "a device")),
            E::Fifo => return Err(kind_refused(name, "a FIFO")),
            E::GNUSparse => return Err(kind_refused(name, "a sparse file")),
            _ => return Err(kind_refused(name, "of a kind the charm does not unpack")),
        }
    }
    // Read to the end of the gzip stream, so that its checksum is checked too.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| watch.stop(e))?;
    Ok(())
}

fn unpack_zip(source: Source, watch: &Watch, out: &mut Writer) -> Step<()> {
    let zip_stop = |e: zip::result::ZipError| match e {
        zip::result::ZipError::Io(e) => watch.stop(e),
        e => Refused::Unreadable(one_line(&e.to_string(), 120)).into(),
    };
    let mut zip = zip::ZipArchive::new(source).map_err(zip_stop)?;
    // The zip reader keeps one entry per name: a second one would go unseen.
    if zip.has_duplicate_names() {
        return Err(Refused::Unreadable("two of its entries have the same name".into()).into());
    }
    if zip.len() as u64 > out.limits.max_entries {
        return Err(Refused::TooMany {
            max_entries: out.limits.max_entries,
        }
        .into());
    }
    for i in 0..zip.len() {
        let (raw_name, encrypted, mode) = {
            let meta = zip.by_index_data(i).map_err(zip_stop)?;
            let name = meta.name().map_err(zip_stop)?.into_owned();
            // The reader's unix_mode() clears setuid and setgid: read the bits themselves.
            let mode = if meta.system() == zip::System::Unix {
                meta.external_attributes() >> 16
            } else {
                meta.unix_mode().unwrap_or(0)
            };
            (name, meta.encrypted(), mode)
        };
        let name = out.entry(raw_name.as_bytes())?;
        if encrypted {
            return Err(Refused::Encrypted { entry: name.shown }.into());
        }
        refuse_set_id(&name, mode)?;
        // Without a unix file type (zips made elsewhere), a trailing slash makes a directory.
        let slash = raw_name.ends_with('/');
        match mode & S_IFMT {
            S_IFDIR => out.directory(&name)?,
            0 | S_IFREG if slash => out.directory(&name)?,
            0 | S_IFREG => {
                let mut contents = zip.by_index(i).map_err(zip_stop)?;
                out.file(&name, mode & 0o111 != 0, &mut contents, &|e| watch.stop(e))?;
            }
            S_IFLNK => {
                let contents = zip.by_index(i).map_err(zip_stop)?;
                let mut target = Vec::new();
                contents
                    .take(MAX_TARGET as u64 + 1)
                    .read_to_end(&mut target)
                    .map_err(|e| watch.stop(e))?;
                out.symlink(&name, &target)?;
            }
            S_IFCHR | S_IFBLK => return Err(kind_refused(name, "a device")),
            S_IFIFO => return Err(kind_refused(name, "a FIFO")),
            S_IFSOCK => return Err(kind_refused(name, "a socket")),
            _ => return Err(kind_refused(name, "of a kind the charm does not unpack")),
        }
    }
    Ok(())
}

fn kind_refused(name: Name, kind: &'static str) -> Stop {
    Refused::Kind {
        entry: name.shown,
        kind,
    }
    .into()
}

fn refuse_set_id(name: &Name, mode: u32) -> Step<()> {
    if mode & 0o6000 != 0 {
        return Err(Refused::SetId {
            entry: name.shown.clone(),
        }
        .into());
    }
    Ok(())
}

// Writing: names checked, paths claimed once, files created new, symlinks made last.

/// The longest file name component Linux takes (NAME_MAX).
const MAX_COMPONENT: usize = 255;
/// The longest path or symlink target Linux takes (PATH_MAX less its NUL).
const MAX_TARGET: usize = 4095;
/// How many symlinks a target may go through, as the kernel allows (MAXSYMLINKS).
const MAX_HOPS: u32 = 40;
/// How many path components checking all the symlinks may walk, following one another: far
/// more than real archives need, and a second or so of work.
const MAX_STEPS: u64 = 10_000_000;
/// The copy buffer. A buffer that would pass the byte limit is not written, so a file
/// refused for size stays within the limit.
const BUFFER: usize = 64 * 1024;

/// What an earlier entry made a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    Dir,
    File { exec: bool },
    Symlink,
}

impl Taken {
    fn what(self) -> &'static str {
        match self {
            Taken::Dir => "directory",
            Taken::File { .. } => "file",
            Taken::Symlink => "symlink",
        }
    }
}

/// An entry's name, checked.
struct Name {
    /// As the archive gives it, for messages.
    shown: String,
    /// Normalised (no `.`, no empty components, no trailing slash), relative to `dest`;
    /// empty for the root itself.
    rel: String,
}

/// A symlink to make at the end.
struct Link {
    shown: String,
    rel: String,
    target: String,
}

/// The unpacking: what has been written where, and the counts.
struct Writer<'a> {
    dest: &'a Path,
    limits: &'a Limits,
    /// The longest relative path that still makes a full path the kernel takes.
    max_rel: usize,
    taken: HashMap<String, Taken>,
    links: Vec<Link>,
    entries: u64,
    files: u64,
    bytes: u64,
    buffer: Vec<u8>,
}

impl<'a> Writer<'a> {
    fn new(dest: &'a Path, limits: &'a Limits) -> Self {
        Writer {
            dest,
            limits,
            max_rel: MAX_TARGET.saturating_sub(dest.as_os_str().len() + 1),
            taken: HashMap::new(),
            links: Vec::new(),
            entries: 0,
            files: 0,
            bytes: 0,
            buffer: vec![0; BUFFER],
        }
    }

    /// Counts an entry and checks its name.
    fn entry(&mut self, raw: &[u8]) -> Step<Name> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Refused::TooMany {
                max_entries: self.limits.max_entries,
            }
            .into());
        }
        let shown = String::from_utf8_lossy(raw).into_owned();
        let text = match checked_text(raw, "name") {
            Ok(text) => text,
            Err(why) => return Err(Refused::BadName { entry: shown, why }.into()),
        };
        match normalise(text, self.max_rel) {
            Ok(rel) => Ok(Name { shown, rel }),
            Err(Bad::Absolute) => Err(Refused::Absolute { entry: shown }.into()),
            Err(Bad::DotDot) => Err(Refused::Leaves { entry: shown }.into()),
            Err(Bad::TooLong) => Err(Refused::BadName {
                entry: shown,
                why: "has a name too long for a file".into(),
            }
            .into()),
        }
    }

    /// Adds `n` bytes to the count, or refuses if that passes the limit.
    fn count(&mut self, n: u64) -> Step<()> {
        if self.bytes.saturating_add(n) > self.limits.max_bytes {
            return Err(Refused::TooBig {
                max_bytes: self.limits.max_bytes,
            }
            .into());
        }
        self.bytes += n;
        Ok(())
    }

    /// A directory entry: made with mode 0755, whatever the archive says.
    fn directory(&mut self, name: &Name) -> Step<()> {
        if name.rel.is_empty() {
            return Ok(());
        }
        match self.taken.get(&name.rel) {
            // Listing a directory again (or after a file in it) changes nothing.
            Some(Taken::Dir) => Ok(()),
            Some(earlier) => Err(Refused::Duplicate {
                entry: name.shown.clone(),
                earlier: earlier.what(),
            }
            .into()),
            None => {
                self.parents(name)?;
                self.make_dir(&name.rel)
            }
        }
    }

    /// Claims the entry's path for a non-directory: refused if an earlier entry took it.
    fn claim(&self, name: &Name) -> Step<()> {
        let earlier = if name.rel.is_empty() {
            Some(Taken::Dir)
        } else {
            self.taken.get(&name.rel).copied()
        };
        match earlier {
            Some(earlier) => Err(Refused::Duplicate {
                entry: name.shown.clone(),
                earlier: earlier.what(),
            }
            .into()),
            None => Ok(()),
        }
    }

    /// Makes the directories above the entry that no entry made yet; refused if one of them is
    /// a file or symlink from an earlier entry.
    fn parents(&mut self, name: &Name) -> Step<()> {
        let rel = name.rel.as_str();
        for (at, _) in rel.match_indices('/') {
            let parent = &rel[..at];
            match self.taken.get(parent) {
                Some(Taken::Dir) => {}
                Some(earlier) => {
                    return Err(Refused::Under {
                        entry: name.shown.clone(),
                        parent: parent.to_owned(),
                        earlier: earlier.what(),
                    }
                    .into())
                }
                None => self.make_dir(parent)?,
            }
        }
        Ok(())
    }

    /// Makes one directory (mode 0755) whose parent is a directory this unpacking made.
    fn make_dir(&mut self, rel: &str) -> Step<()> {
        let path = self.dest.join(rel);
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let meta = fs::symlink_metadata(&path).with_context(|| format!("{}", path.display()))?;
        if !meta.file_type().is_dir() {
            return Err(
                anyhow::anyhow!("{} is not the directory just made", path.display()).into(),
            );
        }
        if meta.permissions().mode() & 0o7777 != 0o755 {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .with_context(|| format!("setting the mode of {}", path.display()))?;
        }
        self.taken.insert(rel.to_owned(), Taken::Dir);
        Ok(())
    }

    /// Checks, just before writing into it, that the entry's directory is a real one.
    fn check_parent(&self, rel: &str) -> Step<()> {
        let parent = match rel.rfind('/') {
            Some(at) => self.dest.join(&rel[..at]),
            None => self.dest.to_path_buf(),
        };
        let meta =
            fs::symlink_metadata(&parent).with_context(|| format!("{}", parent.display()))?;
        if !meta.file_type().is_dir() {
            return Err(anyhow::anyhow!("{} is no longer a directory", parent.display()).into());
        }
        Ok(())
    }

    /// Writes a new regular file from `contents` (mode 0755 if `exec`, else 0644), counting
    /// its bytes as they come. `read_error` says what an error reading `contents` means.
    fn file(
        &mut self,
        name: &Name,
        exec: bool,
        contents: &mut dyn Read,
        read_error: &dyn Fn(io::Error) -> Stop,
    ) -> Step<()> {
        self.claim(name)?;
        self.parents(name)?;
        self.check_parent(&name.rel)?;
        let mode = if exec { 0o755 } else { 0o644 };
        let path = self.dest.join(&name.rel);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        self.taken.insert(name.rel.clone(), Taken::File { exec });
        let mut buffer = std::mem::take(&mut self.buffer);
        let copied = self.copy(contents, &mut file, &mut buffer, &path, read_error);
        self.buffer = buffer;
        copied?;
        // The umask may have taken bits off: set the mode on the open file, not the path.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
        self.files += 1;
        Ok(())
    }

    /// Copies `from` into `to` through `buffer`, counting every chunk before writing it.
    fn copy(
        &mut self,
        from: &mut dyn Read,
        to: &mut File,
        buffer: &mut [u8],
        path: &Path,
        read_error: &dyn Fn(io::Error) -> Stop,
    ) -> Step<()> {
        loop {
            let n = match from.read(buffer) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            // Refused before writing: what is on disk never passes the limit.
            self.count(n as u64)?;
            to.write_all(&buffer[..n])
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }

    /// A tar hard link: a copy of the regular file an earlier entry wrote at `target`.
    fn hard_link(&mut self, name: &Name, target: &[u8]) -> Step<()> {
        let text = checked_text(target, "link target").map_err(|why| Refused::BadName {
            entry: name.shown.clone(),
            why,
        })?;
        let leaves = || Refused::LinkLeaves {
            entry: name.shown.clone(),
            target: text.to_owned(),
        };
        let rel = match normalise(text, self.max_rel) {
            Ok(rel) => rel,
            Err(Bad::Absolute | Bad::DotDot) => return Err(leaves().into()),
            Err(Bad::TooLong) => {
                return Err(Refused::LinkMissing {
                    entry: name.shown.clone(),
                    target: text.to_owned(),
                }
                .into())
            }
        };
        let Some(Taken::File { exec }) = self.taken.get(&rel).copied() else {
            return Err(Refused::LinkMissing {
                entry: name.shown.clone(),
                target: text.to_owned(),
            }
            .into());
        };
        let source = self.dest.join(&rel);
        let mut original = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&source)
            .with_context(|| format!("opening {}", source.display()))?;
        let shown = source.display().to_string();
        self.file(name, exec, &mut original, &|e| {
            anyhow::Error::new(e)
                .context(format!("reading {shown}"))
                .into()
        })
    }

    /// A symlink: checked now, made at the end.
    fn symlink(&mut self, name: &Name, target: &[u8]) -> Step<()> {
        let text = checked_text(target, "link target").map_err(|why| Refused::BadName {
            entry: name.shown.clone(),
            why,
        })?;
        if text.len() > MAX_TARGET {
            return Err(Refused::BadName {
                entry: name.shown.clone(),
                why: "has a link target too long for a symlink".into(),
            }
            .into());
        }
        let leaves = || Refused::LinkLeaves {
            entry: name.shown.clone(),
            target: text.to_owned(),
        };
        if text.starts_with('/') {
            return Err(leaves().into());
        }
        // Lexically first (through the other symlinks once all are known, at the end).
        let mut walk = Walk::new(None);
        let mut dir = walk.parent(&name.rel);
        if walk.walk(&mut dir, text).is_err() {
            return Err(leaves().into());
        }
        self.claim(name)?;
        self.parents(name)?;
        self.count(text.len() as u64)?;
        self.taken.insert(name.rel.clone(), Taken::Symlink);
        self.links.push(Link {
            shown: name.shown.clone(),
            rel: name.rel.clone(),
            target: text.to_owned(),
        });
        Ok(())
    }

    /// Checks every symlink against all the others (a target may go through another
    /// symlink, as `node_modules/.bin` entries do), then makes them: nothing is written after.
    fn finish(self) -> Step<Unpacked> {
        let index = LinkIndex::new(&self.links);
        let mut walk = Walk::new(Some(&index));
        for link in &self.links {
            walk.hops = 0;
            let mut dir = walk.parent(&link.rel);
            match walk.walk(&mut dir, &link.target) {
                Ok(()) => {}
                Err(Escape::Leaves) => {
                    return Err(Refused::LinkLeaves {
                        entry: link.shown.clone(),
                        target: link.target.clone(),
                    }
                    .into())
                }
                Err(Escape::Loop) => {
                    return Err(Refused::LinkLoop {
                        entry: link.shown.clone(),
                    }
                    .into())
                }
                Err(Escape::Tangled) => return Err(Refused::Tangled.into()),
            }
        }
        for link in &self.links {
            self.check_parent(&link.rel)?;
            let path = self.dest.join(&link.rel);
            std::os::unix::fs::symlink(&link.target, &path)
                .with_context(|| format!("creating the symlink {}", path.display()))?;
        }
        Ok(Unpacked {
            files: self.files,
            bytes: self.bytes,
        })
    }
}

/// `raw` as text fit for a file name or link target (`what` names which, for the reason).
fn checked_text<'r>(raw: &'r [u8], what: &str) -> Result<&'r str, String> {
    if raw.is_empty() {
        return Err(format!("has an empty {what}"));
    }
    let text = std::str::from_utf8(raw).map_err(|_| format!("has a {what} that is not UTF-8"))?;
    if text.chars().any(char::is_control) {
        return Err(format!("has a NUL or control character in its {what}"));
    }
    Ok(text)
}

/// Why a name is not a path under the root.
enum Bad {
    Absolute,
    DotDot,
    TooLong,
}

/// `text` as a path relative to the root: `.` and empty components dropped (`./a//b/` is
/// `a/b`, `./` is the root, the empty string); absolute paths and `..` refused.
fn normalise(text: &str, max_len: usize) -> Result<String, Bad> {
    if text.starts_with('/') {
        return Err(Bad::Absolute);
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(Bad::DotDot),
            _ if part.len() > MAX_COMPONENT => return Err(Bad::TooLong),
            _ => parts.push(part),
        }
    }
    let rel = parts.join("/");
    if rel.len() > max_len {
        return Err(Bad::TooLong);
    }
    Ok(rel)
}

/// Why a symlink target does not resolve inside the root.
enum Escape {
    Leaves,
    Loop,
    Tangled,
}

/// The archive's symlinks by path, for [`Walk`]. A path is known by a hash built one
/// component at a time (keyed per process), so that each step of a walk costs the hashing
/// of one component, not of the whole path.
struct LinkIndex<'l> {
    keys: std::collections::hash_map::RandomState,
    by_hash: HashMap<u64, Vec<&'l Link>>,
}

impl<'l> LinkIndex<'l> {
    fn new(links: &'l [Link]) -> Self {
        let mut index = LinkIndex {
            keys: std::collections::hash_map::RandomState::new(),
            by_hash: HashMap::new(),
        };
        for link in links {
            let hash = link.rel.split('/').fold(0, |h, part| index.step(h, part));
            index.by_hash.entry(hash).or_default().push(link);
        }
        index
    }

    /// The hash of a path from its parent's and its last component.
    fn step(&self, parent: u64, part: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.keys, (parent, part))
    }

    /// The target of the symlink at `dir`, if there is one there.
    fn at(&self, dir: &[(&str, u64)]) -> Option<&'l str> {
        let &(_, hash) = dir.last()?;
        let same = |l: &Link| l.rel.split('/').eq(dir.iter().map(|&(part, _)| part));
        let link = self.by_hash.get(&hash)?.iter().find(|l| same(l))?;
        Some(link.target.as_str())
    }
}

/// Resolves symlink targets the way the kernel would, on paths under the root: a path is its
/// components, each with the hash of the path up to it.
struct Walk<'i, 'l> {
    /// The archive's symlinks to follow wherever one is met; none for a lexical walk.
    index: Option<&'i LinkIndex<'l>>,
    /// Symlinks followed for the current target.
    hops: u32,
    /// Components left to walk, for all the targets together.
    steps: u64,
}

impl<'i, 'l> Walk<'i, 'l> {
    fn new(index: Option<&'i LinkIndex<'l>>) -> Self {
        Walk {
            index,
            hops: 0,
            steps: MAX_STEPS,
        }
    }

    /// The directory a normalised path is in.
    fn parent<'t>(&self, rel: &'t str) -> Vec<(&'t str, u64)> {
        let mut dir = Vec::new();
        let mut parts = rel.split('/').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                break;
            }
            self.push(&mut dir, part);
        }
        dir
    }

    fn push<'t>(&self, dir: &mut Vec<(&'t str, u64)>, part: &'t str) {
        let parent = dir.last().map_or(0, |&(_, hash)| hash);
        let hash = self.index.map_or(0, |index| index.step(parent, part));
        dir.push((part, hash));
    }

    /// Walks relative `target` from directory `dir`, following the archive's symlinks where
    /// one is met, and leaves the result in `dir`. Fails if `..` ever goes above the root,
    /// after [`MAX_HOPS`] symlinks, or past [`MAX_STEPS`]. Paths no entry made count as
    /// directories: they cannot lead out.
    fn walk<'t>(&mut self, dir: &mut Vec<(&'t str, u64)>, target: &'t str) -> Result<(), Escape>
    where
        'l: 't,
    {
        if target.starts_with('/') {
            return Err(Escape::Leaves);
        }
        for part in target.split('/') {
            self.steps = self.steps.checked_sub(1).ok_or(Escape::Tangled)?;
            match part {
                "" | "." => {}
                ".." => {
                    if dir.pop().is_none() {
                        return Err(Escape::Leaves);
                    }
                }
                _ => {
                    self.push(dir, part);
                    if let Some(next) = self.index.and_then(|index| index.at(dir)) {
                        self.hops += 1;
                        if self.hops > MAX_HOPS {
                            return Err(Escape::Loop);
                        }
                        dir.pop();
                        self.walk(dir, next)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::files::tests::tempdir;
    use std::io::Cursor;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;
    use tar::{EntryType, Header};

    // Building archives in memory.

    /// One tar entry to build: names are written raw into the header, so that names
    /// `tar::Builder` would refuse (`..`, absolute) can be made too.
    struct T {
        kind: EntryType,
        name: Vec<u8>,
        mode: u32,
        data: Vec<u8>,
        link: Vec<u8>,
    }

    fn entry(kind: EntryType, name: &str, mode: u32, data: &[u8], link: &str) -> T {
        T {
            kind,
            name: name.as_bytes().to_vec(),
            mode,
            data: data.to_vec(),
            link: link.as_bytes().to_vec(),
        }
    }
    fn file(name: &str, mode: u32, data: &[u8]) -> T {
        entry(EntryType::Regular, name, mode, data, "")
    }
    fn dir(name: &str) -> T {
        entry(EntryType::Directory, name, 0o755, b"", "")
    }
    fn sym(name: &str, target: &str) -> T {
        entry(EntryType::Symlink, name, 0o777, b"", target)
    }
    fn hard(name: &str, target: &str) -> T {
        entry(EntryType::Link, name, 0o644, b"", target)
    }

    fn header(t: &T) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(t.kind);
        h.set_mode(t.mode);
        h.set_size(t.data.len() as u64);
        h.set_uid(1234);
        h.set_gid(1234);
        h.set_mtime(1_700_000_000);
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..t.name.len()].copy_from_slice(&t.name);
        old.linkname = [0; 100];
        old.linkname[..t.link.len()].copy_from_slice(&t.link);
        h.set_cksum();
        h
    }

    fn tar_builder() -> tar::Builder<flate2::write::GzEncoder<Vec<u8>>> {
        tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ))
    }

    fn finish_tgz(b: tar::Builder<flate2::write::GzEncoder<Vec<u8>>>) -> Vec<u8> {
        b.into_inner().unwrap().finish().unwrap()
    }

    fn tgz(entries: &[T]) -> Vec<u8> {
        let mut b = tar_builder();
        for t in entries {
            b.append(&header(t), t.data.as_slice()).unwrap();
        }
        finish_tgz(b)
    }

    type ZipOptions = zip::write::SimpleFileOptions;

    fn zip_options(mode: u32) -> ZipOptions {
        ZipOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode)
    }

    fn zip_of(build: impl FnOnce(&mut zip::ZipWriter<Cursor<Vec<u8>>>)) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        build(&mut z);
        z.finish().unwrap().into_inner()
    }

    // Scratch directories.

    /// A temp parent holding the archive, `dest` (empty, 0700) and a sibling directory with
    /// one file: what a hostile archive would reach for.
    struct Scratch {
        parent: PathBuf,
        archive: PathBuf,
        dest: PathBuf,
        sibling: PathBuf,
    }

    fn scratch(tag: &str, bytes: &[u8]) -> Scratch {
        let parent = tempdir(&format!("archive-{tag}"));
        let dest = parent.join("dest");
        fs::DirBuilder::new().mode(0o700).create(&dest).unwrap();
        let sibling = parent.join("sibling");
        fs::create_dir(&sibling).unwrap();
        fs::write(sibling.join("keep"), b"keep").unwrap();
        let archive = parent.join("cloud-code.bin");
        fs::write(&archive, bytes).unwrap();
        Scratch {
            parent,
            archive,
            dest,
            sibling,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    impl Scratch {
        fn unpack(&self, limits: &Limits) -> Result<Unpacked, Refused> {
            unpack(&self.archive, &self.dest, limits).expect("no fault")
        }

        /// Nothing appeared or changed beside `dest`.
        fn assert_outside_untouched(&self) {
            assert_eq!(names(&self.parent), ["cloud-code.bin", "dest", "sibling"]);
            assert_eq!(names(&self.sibling), ["keep"]);
            let keep = self.sibling.join("keep");
            assert!(fs::symlink_metadata(&keep).unwrap().file_type().is_file());
            assert_eq!(fs::read(&keep).unwrap(), b"keep");
            assert_eq!(fs::metadata(&keep).unwrap().nlink(), 1);
        }

        fn remove(self) {
            fs::remove_dir_all(&self.parent).unwrap();
        }
    }

    /// Unpacks a hostile archive: it must be refused, with nothing written outside `dest`.
    fn refused(tag: &str, bytes: &[u8], limits: &Limits) -> (Refused, Scratch) {
        let s = scratch(tag, bytes);
        let why = match s.unpack(limits) {
            Err(why) => why,
            Ok(done) => panic!("{tag}: unpacked {done:?}"),
        };
        s.assert_outside_untouched();
        (why, s)
    }

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    // Good archives.

    const MAIN: &[u8] = b"Parse.Cloud.define('hi', () => 'hi');\n";

    #[test]
    fn a_good_tar_gz_unpacks_with_its_contents_and_plain_modes() {
        let long_dir = format!("./node_modules/{}", "d".repeat(120));
        let mut b = tar_builder();
        // `git archive` puts the commit in a pax global header first.
        let pax = b"52 comment=0123456789012345678901234567890123456789\n";
        let mut g = entry(
            EntryType::XGlobalHeader,
            "pax_global_header",
            0o666,
            pax,
            "",
        );
        g.data = pax.to_vec();
        let entries = [
            g,
            dir("./"),
            file("./main.js", 0o600, MAIN),
            file("./package.json", 0o664, b"{\"name\":\"cloud\"}\n"),
            file("./node_modules/x/index.js", 0o700, b"module.exports = 1;\n"),
            dir("./lib/"),
            file("./lib/a.js", 0o644, b"a"),
            sym("./current.js", "lib/a.js"),
            sym("./lib/up", ".."),
            hard("./copy.js", "./main.js"),
        ];
        for t in &entries {
            b.append(&header(t), t.data.as_slice()).unwrap();
        }
        // A name past 100 bytes: the builder writes a GNU long-name entry before it.
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(4);
        b.append_data(&mut h, format!("{long_dir}/long.js"), &b"long"[..])
            .unwrap();
        let s = scratch("good-tgz", &finish_tgz(b));

        let done = s.unpack(&LIMITS).unwrap();
        let d = &s.dest;
        assert_eq!(fs::read(d.join("main.js")).unwrap(), MAIN);
        assert_eq!(mode(&d.join("main.js")), 0o644);
        assert_eq!(mode(&d.join("package.json")), 0o644);
        let index = d.join("node_modules/x/index.js");
        assert_eq!(fs::read(&index).unwrap(), b"module.exports = 1;\n");
        assert_eq!(mode(&index), 0o755);
        assert_eq!(mode(&d.join("node_modules")), 0o755);
        assert_eq!(mode(&d.join("node_modules/x")), 0o755);
        assert_eq!(mode(&d.join("lib")), 0o755);
        assert_eq!(
            fs::read(d.join(&long_dir[2..]).join("long.js")).unwrap(),
            b"long"
        );
        // The symlinks, as given.
        assert_eq!(
            fs::read_link(d.join("current.js")).unwrap(),
            Path::new("lib/a.js")
        );
        assert_eq!(fs::read(d.join("current.js")).unwrap(), b"a");
        assert_eq!(fs::read_link(d.join("lib/up")).unwrap(), Path::new(".."));
        // The hard link is a copy, not a second name for the same inode.
        let copy = d.join("copy.js");
        assert_eq!(
            fs::read(&copy).unwrap(),
            fs::read(d.join("main.js")).unwrap()
        );
        let (m1, m2) = (
            fs::symlink_metadata(&copy).unwrap(),
            fs::symlink_metadata(d.join("main.js")).unwrap(),
        );
        assert!(m1.file_type().is_file());
        assert_ne!(m1.ino(), m2.ino());
        assert_eq!(m1.nlink(), 1);
        // The archive's owner (1234) is not kept: files belong to whoever unpacks.
        assert_eq!(m2.uid(), fs::metadata(&s.parent).unwrap().uid());
        // Contents (main.js twice, once as the copy), then the two symlink targets.
        let main = MAIN.len() as u64;
        assert_eq!(
            done,
            Unpacked {
                files: 6,
                bytes: main + 17 + 20 + 1 + main + 4 + 8 + 2,
            }
        );
        s.assert_outside_untouched();
        s.remove();
    }

    #[test]
    fn symlinks_may_go_through_other_symlinks_that_stay_inside() {
        // The layout pnpm makes: a package is a symlink, .bin entries point through it.
        let bytes = tgz(&[
            file("node_modules/.pnpm/p@1/node_modules/p/bin.js", 0o755, b"x"),
            sym("node_modules/p", ".pnpm/p@1/node_modules/p"),
            sym("node_modules/.bin/p", "../p/bin.js"),
        ]);
        let s = scratch("through-links", &bytes);
        s.unpack(&LIMITS).unwrap();
        assert_eq!(fs::read(s.dest.join("node_modules/.bin/p")).unwrap(), b"x");
        s.remove();
    }

    #[test]
    fn a_good_zip_unpacks_with_its_contents_and_plain_modes() {
        let bytes = zip_of(|z| {
            z.add_directory("lib/", zip_options(0o700)).unwrap();
            z.start_file("main.js", zip_options(0o600)).unwrap();
            z.write_all(b"main").unwrap();
            z.start_file("./node_modules/x/index.js", zip_options(0o775))
                .unwrap();
            z.write_all(b"index").unwrap();
            z.add_symlink("lib/main.js", "../main.js", zip_options(0o777))
                .unwrap();
        });
        let s = scratch("good-zip", &bytes);
        let done = s.unpack(&LIMITS).unwrap();
        let d = &s.dest;
        assert_eq!(fs::read(d.join("main.js")).unwrap(), b"main");
        assert_eq!(mode(&d.join("main.js")), 0o644);
        assert_eq!(
            fs::read(d.join("node_modules/x/index.js")).unwrap(),
            b"index"
        );
        assert_eq!(mode(&d.join("node_modules/x/index.js")), 0o755);
        assert_eq!(mode(&d.join("lib")), 0o755);
        assert_eq!(
            fs::read_link(d.join("lib/main.js")).unwrap(),
            Path::new("../main.js")
        );
        assert_eq!(
            done,
            Unpacked {
                files: 2,
                bytes: 4 + 5 + 10
            }
        );
        s.assert_outside_untouched();
        s.remove();
    }

    // Names.

    #[test]
    fn a_dot_dot_component_is_refused() {
        let (why, s) = refused(
            "dotdot",
            &tgz(&[file("./a/../../sibling/keep", 0o644, b"evil")]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::Leaves { .. }), "{why:?}");
        assert_eq!(
            why.to_string(),
            "entry \"./a/../../sibling/keep\" leaves the archive"
        );
        s.remove();
    }

    #[test]
    fn an_absolute_path_is_refused() {
        let target = format!("{}/sibling/evil", std::env::temp_dir().display());
        let (why, s) = refused("absolute", &tgz(&[file(&target, 0o644, b"evil")]), &LIMITS);
        assert!(matches!(why, Refused::Absolute { .. }), "{why:?}");
        assert!(why.to_string().ends_with("is an absolute path"), "{why}");
        s.remove();
    }

    #[test]
    fn control_characters_in_names_are_refused_and_escaped() {
        let (why, s) = refused("control", &tgz(&[file("a\nb.js", 0o644, b"x")]), &LIMITS);
        assert!(matches!(why, Refused::BadName { .. }), "{why:?}");
        assert_eq!(
            why.to_string(),
            "entry \"a\\nb.js\" has a NUL or control character in its name"
        );
        s.remove();
    }

    // Symlinks.

    #[test]
    fn a_symlink_to_an_absolute_target_is_refused() {
        let (why, s) = refused("sym-abs", &tgz(&[sym("etc", "/etc")]), &LIMITS);
        assert!(matches!(why, Refused::LinkLeaves { .. }), "{why:?}");
        assert_eq!(
            why.to_string(),
            "link \"etc\" points to \"/etc\", outside the archive"
        );
        assert!(fs::symlink_metadata(s.dest.join("etc")).is_err());
        s.remove();
    }

    #[test]
    fn a_symlink_whose_relative_target_leaves_is_refused() {
        let (why, s) = refused(
            "sym-rel",
            &tgz(&[
                dir("a/"),
                sym("lnk", "a/../../sibling"),
                file("b/c.js", 0o644, b"x"),
            ]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::LinkLeaves { .. }), "{why:?}");
        assert!(fs::symlink_metadata(s.dest.join("lnk")).is_err());
        s.remove();
        // From the link's own directory: one level up from `a/` is still inside, two are not.
        let s = scratch("sym-rel-ok", &tgz(&[sym("a/lnk", "../b")]));
        s.unpack(&LIMITS).unwrap();
        s.remove();
        let (why, s) = refused("sym-rel-2", &tgz(&[sym("a/lnk", "../../b")]), &LIMITS);
        assert!(matches!(why, Refused::LinkLeaves { .. }), "{why:?}");
        s.remove();
    }

    #[test]
    fn a_symlink_that_leaves_through_another_symlink_is_refused() {
        // Each is inside on its own; `up/..` is the root's parent once `up` is followed.
        let (why, s) = refused(
            "sym-chain",
            &tgz(&[sym("up", "."), sym("out", "up/../sibling")]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::LinkLeaves { .. }), "{why:?}");
        assert!(why.to_string().starts_with("link \"out\""), "{why}");
        assert!(fs::symlink_metadata(s.dest.join("up")).is_err());
        s.remove();
        let (why, s) = refused("sym-loop", &tgz(&[sym("a", "b/x"), sym("b", "a")]), &LIMITS);
        assert!(matches!(why, Refused::LinkLoop { .. }), "{why:?}");
        s.remove();
    }

    #[test]
    fn checking_symlinks_has_a_bounded_cost() {
        // 5 100 symlinks of 2 000 components each pass the real bound; a small one here.
        let mut walk = Walk::new(None);
        walk.steps = 3;
        assert!(matches!(
            walk.walk(&mut Vec::new(), "a/b/c/d"),
            Err(Escape::Tangled)
        ));
        let mut walk = Walk::new(None);
        walk.steps = 4;
        assert!(walk.walk(&mut Vec::new(), "a/b/c/d").is_ok());
    }

    /// The archive's symlinks are made last, so a later entry under one could only be
    /// written through it: such an entry is refused, in either order.
    #[test]
    fn an_entry_under_a_symlink_is_refused_not_written_through_it() {
        let (why, s) = refused(
            "under-link",
            &tgz(&[
                dir("sub/"),
                sym("lnk", "sub"),
                file("lnk/evil.js", 0o644, b"evil"),
            ]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::Under { .. }), "{why:?}");
        assert_eq!(
            why.to_string(),
            "entry \"lnk/evil.js\" lies under the symlink \"lnk\""
        );
        assert_eq!(names(&s.dest), ["sub"]);
        assert!(names(&s.dest.join("sub")).is_empty());
        s.remove();
        // The other order: `lnk/` is a real directory by then, and the symlink is refused.
        let (why, s) = refused(
            "under-link-2",
            &tgz(&[file("lnk/evil.js", 0o644, b"evil"), sym("lnk", "sub")]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::Duplicate { .. }), "{why:?}");
        assert!(fs::symlink_metadata(s.dest.join("lnk"))
            .unwrap()
            .file_type()
            .is_dir());
        s.remove();
    }

    // Hard links.

    #[test]
    fn a_hard_link_that_leaves_is_refused() {
        for (tag, target) in [("hard-up", "../sibling/keep"), ("hard-abs", "/etc/passwd")] {
            let (why, s) = refused(tag, &tgz(&[hard("keep", target)]), &LIMITS);
            assert!(matches!(why, Refused::LinkLeaves { .. }), "{why:?}");
            assert!(fs::symlink_metadata(s.dest.join("keep")).is_err());
            s.remove();
        }
    }

    #[test]
    fn a_hard_link_to_no_earlier_file_is_refused() {
        let (why, s) = refused(
            "hard-missing",
            &tgz(&[hard("a.js", "b.js"), file("b.js", 0o644, b"b")]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::LinkMissing { .. }), "{why:?}");
        assert_eq!(
            why.to_string(),
            "hard link \"a.js\" points to \"b.js\", not a file unpacked before it"
        );
        s.remove();
        // Nor to a symlink or a directory.
        let (why, s) = refused(
            "hard-to-link",
            &tgz(&[dir("d/"), sym("s", "d"), hard("h", "s")]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::LinkMissing { .. }), "{why:?}");
        s.remove();
    }

    // Kinds and modes.

    #[test]
    fn a_device_is_refused() {
        let (why, s) = refused(
            "chardev",
            &tgz(&[entry(EntryType::Char, "dev/null", 0o666, b"", "")]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::Kind { .. }), "{why:?}");
        assert_eq!(why.to_string(), "entry \"dev/null\" is a device");
        assert!(names(&s.dest).is_empty());
        s.remove();
    }

    #[test]
    fn a_fifo_is_refused() {
        let (why, s) = refused(
            "fifo",
            &tgz(&[entry(EntryType::Fifo, "pipe", 0o644, b"", "")]),
            &LIMITS,
        );
        assert_eq!(why.to_string(), "entry \"pipe\" is a FIFO");
        s.remove();
    }

    #[test]
    fn setuid_is_refused() {
        let (why, s) = refused("setuid", &tgz(&[file("su", 0o4755, b"x")]), &LIMITS);
        assert!(matches!(why, Refused::SetId { .. }), "{why:?}");
        assert_eq!(why.to_string(), "entry \"su\" is setuid or setgid");
        s.remove();
    }

    #[test]
    fn setgid_is_refused_on_a_directory_too() {
        let mut d = dir("shared/");
        d.mode = 0o2775;
        let (why, s) = refused("setgid", &tgz(&[d]), &LIMITS);
        assert!(matches!(why, Refused::SetId { .. }), "{why:?}");
        s.remove();
    }

    // Limits.

    #[test]
    fn a_gzip_bomb_stops_at_the_byte_limit() {
        let bomb = tgz(&[file("zeros", 0o644, &vec![0; 10 << 20])]);
        assert!(bomb.len() < 100 << 10);
        for max_bytes in [1 << 10, 100 << 10] {
            let limits = Limits {
                max_bytes,
                max_entries: 10,
            };
            let (why, s) = refused("bomb", &bomb, &limits);
            assert!(matches!(why, Refused::TooBig { .. }), "{why:?}");
            let written = fs::metadata(s.dest.join("zeros")).unwrap().len();
            assert!(written <= max_bytes + BUFFER as u64, "{written}");
            s.remove();
        }
        let (why, s) = refused(
            "bomb-msg",
            &bomb,
            &Limits {
                max_bytes: 1 << 10,
                max_entries: 10,
            },
        );
        assert_eq!(why.to_string(), "unpacks to more than 1 KiB");
        s.remove();
    }

    #[test]
    fn hard_link_copies_count_toward_the_byte_limit() {
        let limits = Limits {
            max_bytes: 1000,
            max_entries: 10,
        };
        let (why, s) = refused(
            "hard-bytes",
            &tgz(&[file("a", 0o644, &[7; 600]), hard("b", "a")]),
            &limits,
        );
        assert!(matches!(why, Refused::TooBig { .. }), "{why:?}");
        s.remove();
    }

    #[test]
    fn data_on_entries_that_have_none_is_bounded_too() {
        // A directory header claiming 40 MiB: the tar reader would skip (decompress) it all.
        let mut d = dir("d/");
        d.data = vec![0; 40 << 20];
        let (why, s) = refused("overhead", &tgz(&[d]), &LIMITS);
        assert!(matches!(why, Refused::Overhead), "{why:?}");
        s.remove();
    }

    #[test]
    fn the_entry_limit_is_enforced() {
        let five: Vec<T> = (0..5)
            .map(|i| file(&format!("f{i}"), 0o644, b"x"))
            .collect();
        let bytes = tgz(&five);
        let limits = |max_entries| Limits {
            max_bytes: 1 << 20,
            max_entries,
        };
        let (why, s) = refused("entries", &bytes, &limits(4));
        assert!(matches!(why, Refused::TooMany { .. }), "{why:?}");
        assert_eq!(why.to_string(), "has more than 4 entries");
        s.remove();
        let s = scratch("entries-ok", &bytes);
        assert_eq!(s.unpack(&limits(5)).unwrap().files, 5);
        s.remove();
    }

    // Duplicates and what is not an archive.

    #[test]
    fn a_path_given_twice_is_refused() {
        let (why, s) = refused(
            "dup-file",
            &tgz(&[file("a.js", 0o644, b"1"), file("./a.js", 0o644, b"2")]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::Duplicate { .. }), "{why:?}");
        assert_eq!(
            why.to_string(),
            "entry \"./a.js\" is already in the archive as a file"
        );
        assert_eq!(fs::read(s.dest.join("a.js")).unwrap(), b"1");
        s.remove();
        let (why, s) = refused(
            "dup-dir",
            &tgz(&[dir("a/"), file("a", 0o644, b"x")]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::Duplicate { .. }), "{why:?}");
        s.remove();
        let (why, s) = refused(
            "dup-under-file",
            &tgz(&[file("a", 0o644, b"x"), dir("a/b/")]),
            &LIMITS,
        );
        assert!(matches!(why, Refused::Under { .. }), "{why:?}");
        s.remove();
    }

    #[test]
    fn what_is_not_an_archive_is_refused() {
        for (tag, bytes) in [
            ("not-text", &b"console.log('hi');\n"[..]),
            ("not-empty", b""),
            ("not-p", b"P"),
        ] {
            let (why, s) = refused(tag, bytes, &LIMITS);
            assert!(matches!(why, Refused::NotAnArchive), "{why:?}");
            assert_eq!(why.to_string(), "not a .tar.gz or .zip archive");
            s.remove();
        }
        // gzip, but not of a tar.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[b'x'; 2000]).unwrap();
        let (why, s) = refused("not-tar", &gz.finish().unwrap(), &LIMITS);
        assert!(matches!(why, Refused::Unreadable(_)), "{why:?}");
        s.remove();
    }

    // Zip.

    #[test]
    fn a_zip_dot_dot_is_refused() {
        let bytes = zip_of(|z| {
            z.start_file("../sibling/keep", zip_options(0o644)).unwrap();
            z.write_all(b"evil").unwrap();
        });
        let (why, s) = refused("zip-dotdot", &bytes, &LIMITS);
        assert!(matches!(why, Refused::Leaves { .. }), "{why:?}");
        s.remove();
    }

    #[test]
    fn a_zip_symlink_that_leaves_is_refused() {
        let bytes = zip_of(|z| {
            z.add_symlink("lnk", "../sibling", zip_options(0o777))
                .unwrap();
            z.start_file("other.js", zip_options(0o644)).unwrap();
            z.write_all(b"x").unwrap();
        });
        let (why, s) = refused("zip-symlink", &bytes, &LIMITS);
        assert!(matches!(why, Refused::LinkLeaves { .. }), "{why:?}");
        assert!(fs::symlink_metadata(s.dest.join("lnk")).is_err());
        s.remove();
    }

    #[test]
    fn a_zip_bomb_stops_at_the_byte_limit() {
        let bytes = zip_of(|z| {
            z.start_file("zeros", zip_options(0o644)).unwrap();
            z.write_all(&vec![0; 10 << 20]).unwrap();
        });
        assert!(bytes.len() < 100 << 10);
        let max_bytes = 100 << 10;
        let limits = Limits {
            max_bytes,
            max_entries: 10,
        };
        let (why, s) = refused("zip-bomb", &bytes, &limits);
        assert!(matches!(why, Refused::TooBig { .. }), "{why:?}");
        let written = fs::metadata(s.dest.join("zeros")).unwrap().len();
        assert!(written <= max_bytes + BUFFER as u64, "{written}");
        s.remove();
    }

    #[test]
    fn zip_setuid_devices_and_encryption_are_refused() {
        let setuid = zip_of(|z| {
            let o = zip_options(0).external_attributes((S_IFREG | 0o4755) << 16);
            z.start_file("su", o).unwrap();
            z.write_all(b"x").unwrap();
        });
        let (why, s) = refused("zip-setuid", &setuid, &LIMITS);
        assert!(matches!(why, Refused::SetId { .. }), "{why:?}");
        s.remove();

        let fifo = zip_of(|z| {
            let o = zip_options(0).external_attributes((S_IFIFO | 0o644) << 16);
            z.start_file("pipe", o).unwrap();
        });
        let (why, s) = refused("zip-fifo", &fifo, &LIMITS);
        assert_eq!(why.to_string(), "entry \"pipe\" is a FIFO");
        s.remove();

        // Set the encryption flag in the central directory, as an encrypting tool would.
        let mut enc = zip_of(|z| {
            z.start_file("secret.js", zip_options(0o644)).unwrap();
            z.write_all(b"x").unwrap();
        });
        let at = enc.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        enc[at + 8] |= 1;
        let (why, s) = refused("zip-encrypted", &enc, &LIMITS);
        assert!(matches!(why, Refused::Encrypted { .. }), "{why:?}");
        assert_eq!(why.to_string(), "entry \"secret.js\" is encrypted");
        s.remove();
    }

    #[test]
    fn a_dest_that_is_not_a_directory_is_a_fault_not_a_refusal() {
        let s = scratch("dest-fault", &tgz(&[file("a", 0o644, b"x")]));
        let not_dir = s.parent.join("cloud-code.bin");
        assert!(unpack(&s.archive, &not_dir, &LIMITS).is_err());
        s.remove();
    }
}
