//! A check of a `data.pkl` before candle's pickle VM runs it, and the reading of its tensors.
//!
//! candle's VM trusts its input: it allocates a string's claimed length before reading it, clones
//! a memoised object on every GET (a few dozen GETs of GETs grow exponentially), drops deeply
//! nested objects recursively (a pickle nested 10^6 deep overflows the stack) and indexes tuples
//! without checking their length. [`check`] walks the opcodes once with a model of the stack that
//! holds each object's nesting depth and size instead of the object, and refuses anything that
//! would do one of these, any opcode candle does not run, and any global outside the allow-list
//! of what `torch.save` writes for a state dict. No code is ever run: REDUCE and BUILD only build
//! descriptions, and an entry that is a call but not a tensor is refused by the reader.

use candle_core::pickle::Object;
use candle_core::DType;

/// Deepest nesting accepted (a state dict's tensors are about 6 deep).
pub const MAX_DEPTH: u32 = 100;
/// Globals a PyTorch state dict may name.
const ALLOWED_GLOBALS: &[(&str, &str)] = &[
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch.nn.parameter", "Parameter"),
    ("torch", "Tensor"),
    ("torch", "FloatStorage"),
    ("torch", "DoubleStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
    ("torch", "ByteStorage"),
    ("torch", "LongStorage"),
];

#[derive(Clone, Copy)]
enum Item {
    Mark,
    /// An object: how deep it nests and how many objects it is made of.
    Object { depth: u32, nodes: u64 },
}

const LEAF: Item = Item::Object { depth: 1, nodes: 1 };

/// Check `pickle` as described in the module docs; the error says what was refused and where.
pub fn check(pickle: &[u8]) -> Result<(), String> {
    // candle clones memoised objects on GET: all objects built may not exceed what the file could
    // describe with plain opcodes by much.
    let max_nodes = 16 * pickle.len() as u64 + (1 << 20);
    let mut built = 0u64;
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: std::collections::HashMap<u32, Item> = std::collections::HashMap::new();
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8], String> {
        let end = pos.checked_add(n).filter(|&e| e <= pickle.len()).ok_or_else(|| format!("truncated at byte {pos}"))?;
        let bytes = &pickle[*pos..end];
        *pos = end;
        Ok(bytes)
    };
    let le = |bytes: &[u8]| bytes.iter().rev().fold(0u64, |v, &b| v << 8 | u64::from(b));
    let pop = |stack: &mut Vec<Item>, at: usize| -> Result<(u32, u64), String> {
        match stack.pop() {
            Some(Item::Object { depth, nodes }) => Ok((depth, nodes)),
            Some(Item::Mark) => Err(format!("a mark where an object was expected at byte {at}")),
            None => Err(format!("empty stack at byte {at}")),
        }
    };
    let pop_to_mark = |stack: &mut Vec<Item>, at: usize| -> Result<(u32, u64), String> {
        let (mut depth, mut nodes) = (0, 0);
        loop {
            match stack.pop() {
                Some(Item::Mark) => return Ok((depth, nodes)),
                Some(Item::Object { depth: d, nodes: n }) => (depth, nodes) = (depth.max(d), nodes + n),
                None => return Err(format!("no mark at byte {at}")),
            }
        }
    };
    loop {
        let at = pos;
        let op = take(&mut pos, 1)?[0];
        // The new object (if any) this opcode leaves on top of the stack.
        let pushed = match op {
            0x80 => {
                take(&mut pos, 1)?;
                None
            }
            b'c' => {
                let mut line = || -> Result<String, String> {
                    let rest = &pickle[pos..];
                    let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| format!("unterminated GLOBAL at byte {at}"))?;
                    pos += end + 1;
                    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
                };
                let (module, name) = (line()?, line()?);
                if !ALLOWED_GLOBALS.contains(&(module.as_str(), name.as_str())) {
                    return Err(format!("it names {module}.{name}, which a state dict does not use (refused, nothing was run)"));
                }
                Some(LEAF)
            }
            b'K' | b'M' | b'J' | b'G' => {
                take(&mut pos, match op { b'K' => 1, b'M' => 2, b'J' => 4, _ => 8 })?;
                Some(LEAF)
            }
            0x8a => {
                let n = take(&mut pos, 1)?[0] as usize;
                if n > 8 {
                    return Err(format!("a {n}-byte integer at byte {at}"));
                }
                take(&mut pos, n)?;
                Some(LEAF)
            }
            b'X' => {
                let len = le(take(&mut pos, 4)?) as usize;
                take(&mut pos, len)?;
                Some(LEAF)
            }
            b'N' | 0x88 | 0x89 | b'}' | b'd' | b']' | b')' => Some(LEAF),
            b'(' => {
                stack.push(Item::Mark);
                None
            }
            b'Q' => {
                let (d, n) = pop(&mut stack, at)?;
                Some(Item::Object { depth: d + 1, nodes: n + 1 })
            }
            b't' => {
                let (d, n) = pop_to_mark(&mut stack, at)?;
                Some(Item::Object { depth: d + 1, nodes: n + 1 })
            }
            0x85..=0x87 => {
                let (mut depth, mut nodes) = (0, 1);
                for _ in 0..(op - 0x84) {
                    let (d, n) = pop(&mut stack, at)?;
                    (depth, nodes) = (depth.max(d), nodes + n);
                }
                Some(Item::Object { depth: depth + 1, nodes })
            }
            // Into the object below: APPEND, SETITEM, APPENDS, SETITEMS, BUILD, REDUCE, NEWOBJ.
            b'a' | b's' | b'e' | b'u' | b'b' | b'R' | 0x81 => {
                let (d, n) = match op {
                    b'e' | b'u' => pop_to_mark(&mut stack, at)?,
                    b's' => {
                        let (value_depth, value_nodes) = pop(&mut stack, at)?;
                        let (key_depth, key_nodes) = pop(&mut stack, at)?;
                        (value_depth.max(key_depth), value_nodes + key_nodes)
                    }
                    _ => pop(&mut stack, at)?,
                };
                let (below_depth, below_nodes) = pop(&mut stack, at)?;
                Some(Item::Object { depth: below_depth.max(d + 1), nodes: below_nodes + n })
            }
            b'h' | b'j' => {
                let id = le(take(&mut pos, if op == b'h' { 1 } else { 4 })?) as u32;
                let item = *memo.get(&id).ok_or_else(|| format!("GET of unset memo {id} at byte {at}"))?;
                if let Item::Object { nodes, .. } = item {
                    built += nodes;
                }
                Some(item)
            }
            b'q' | b'r' => {
                let id = le(take(&mut pos, if op == b'q' { 1 } else { 4 })?) as u32;
                let top = *stack.last().ok_or_else(|| format!("PUT on an empty stack at byte {at}"))?;
                memo.insert(id, top);
                None
            }
            b'.' => return Ok(()),
            other => return Err(format!("opcode 0x{other:02x} at byte {at} is not supported")),
        };
        if let Some(item) = pushed {
            if let Item::Object { depth, nodes } = item {
                if depth > MAX_DEPTH {
                    return Err(format!("objects nest more than {MAX_DEPTH} deep (at byte {at})"));
                }
                built += 1;
                if nodes > max_nodes || built > max_nodes {
                    return Err(format!("it builds more than {max_nodes} objects (at byte {at})"));
                }
            }
            stack.push(item);
        }
    }
}

/// The tensor a state-dict entry describes: `_rebuild_tensor_v2(storage, offset, size, stride,
/// ...)`, possibly wrapped in `_rebuild_parameter` or `_rebuild_from_type_v2`.
pub struct TensorEntry {
    pub dtype: DType,
    /// The storage's entry name in the archive's data directory.
    pub storage: String,
    pub dims: Vec<usize>,
    pub stride: Vec<usize>,
    /// Offset into the storage, in bytes (checked not to overflow).
    pub offset_bytes: usize,
}

/// The tensor `value` describes, `Ok(None)` for plain data (numbers, strings, ...), and an error
/// for anything else: a call that is not a tensor is refused, not skipped.
pub fn tensor_entry(value: Object) -> Result<Option<TensorEntry>, String> {
    let (callable, args) = match value {
        Object::Reduce { callable, args } => (*callable, *args),
        Object::Build { .. } | Object::Class { .. } | Object::PersistentLoad(_) => {
            return Err("an entry is an object or call, not a tensor".into())
        }
        _ => return Ok(None),
    };
    let class = |o: &Object| match o {
        Object::Class { module_name, class_name } => Some((module_name.clone(), class_name.clone())),
        _ => None,
    };
    let mut args = tuple(args)?;
    let (callable, args) = match class(&callable).as_ref().map(|(m, c)| (m.as_str(), c.as_str())) {
        // _rebuild_from_type_v2(func, new_type, args, state)
        Some(("torch._tensor", "_rebuild_from_type_v2")) if args.len() >= 3 => {
            let inner = args.swap_remove(2);
            (args.swap_remove(0), inner)
        }
        // _rebuild_parameter(data, requires_grad, backward_hooks): data is the tensor's REDUCE.
        Some(("torch._utils", "_rebuild_parameter")) if !args.is_empty() => match args.swap_remove(0) {
            Object::Reduce { callable, args } => (*callable, *args),
            _ => return Err("a parameter that does not hold a tensor".into()),
        },
        _ => (callable, Object::Tuple(args)),
    };
    if class(&callable).as_ref().map(|(m, c)| (m.as_str(), c.as_str())) != Some(("torch._utils", "_rebuild_tensor_v2")) {
        return Err("an entry is a call, but not of a tensor constructor".into());
    }
    let mut args = tuple(args)?;
    if args.len() < 4 {
        return Err("_rebuild_tensor_v2 with fewer than 4 arguments".into());
    }
    let stride = usizes(args.swap_remove(3))?;
    let dims = usizes(args.swap_remove(2))?;
    let offset = int(&args[1])?;
    let Object::PersistentLoad(storage) = args.swap_remove(0) else { return Err("a tensor without a storage".into()) };
    let storage = tuple(*storage)?;
    let (Some(Object::Class { class_name, .. }), Some(Object::Unicode(key))) = (storage.get(1), storage.get(2)) else {
        return Err("a storage reference that is not (tag, class, key, device, size)".into());
    };
    let dtype = match class_name.as_str() {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "ByteStorage" => DType::U8,
        "LongStorage" => DType::I64,
        other => return Err(format!("unsupported storage type {other}")),
    };
    if dims.len() != stride.len() {
        return Err(format!("size {dims:?} and stride {stride:?} differ in rank"));
    }
    let offset_bytes = offset
        .checked_mul(dtype.size_in_bytes())
        .filter(|_| super::tensor_bytes(&dims, dtype.size_in_bytes()).is_some())
        .ok_or_else(|| format!("offset {offset} or size {dims:?} overflows"))?;
    Ok(Some(TensorEntry { dtype, storage: key.clone(), dims, stride, offset_bytes }))
}

fn tuple(o: Object) -> Result<Vec<Object>, String> {
    match o {
        Object::Tuple(items) => Ok(items),
        other => Err(format!("expected a tuple, found {}", kind(&other))),
    }
}

fn int(o: &Object) -> Result<usize, String> {
    match *o {
        Object::Int(n) if n >= 0 => Ok(n as usize),
        Object::Long(n) if n >= 0 => usize::try_from(n).map_err(|_| format!("{n} is too large")),
        Object::Int(n) => Err(format!("expected a non-negative integer, found {n}")),
        Object::Long(n) => Err(format!("expected a non-negative integer, found {n}")),
        ref other => Err(format!("expected a non-negative integer, found {}", kind(other))),
    }
}

fn usizes(o: Object) -> Result<Vec<usize>, String> {
    tuple(o)?.iter().map(int).collect()
}

/// What an object is, for messages (its contents may be large).
fn kind(o: &Object) -> &'static str {
    match o {
        Object::Class { .. } => "a class",
        Object::Int(_) | Object::Long(_) => "an integer",
        Object::Float(_) => "a float",
        Object::Unicode(_) => "a string",
        Object::Bool(_) => "a bool",
        Object::None => "None",
        Object::Tuple(_) => "a tuple",
        Object::List(_) => "a list",
        Object::Mark => "a mark",
        Object::Dict(_) => "a dict",
        Object::Reduce { .. } => "a call",
        Object::Build { .. } => "a built object",
        Object::PersistentLoad(_) => "a storage reference",
    }
}
