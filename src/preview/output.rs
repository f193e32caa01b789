//! The preview as a reviewer reads it (text) and as a CI bot reads it (JSON).

use std::fmt::Write;

use serde_json::{Value, json};

use super::{Change, EntryChange, Preview};

/// The preview as text: one line per change, then what is left alone, the problems, the
/// header against its limits and a summary line.
pub fn text(preview: &Preview) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for QlikTenant {}/{} ({}): {} entries in the tenant, {} CspEntries in the manifests",
        preview.namespace,
        preview.tenant,
        preview.url,
        preview.tenant_entries,
        preview.manifest_entries,
    );
    let _ = writeln!(out);
    let width = preview
        .changes
        .iter()
        .map(|c| c.entry.len())
        .max()
        .unwrap_or(0);
    for change in preview
        .changes
        .iter()
        .filter(|c| c.change != Change::Unchanged)
    {
        let _ = writeln!(out, "{}", line(change, width));
        for field in &change.fields {
            let _ = writeln!(
                out,
                "        {}: {:?} → {:?}",
                field.field, field.from, field.to
            );
        }
    }
    let unchanged = preview.count(Change::Unchanged);
    if unchanged > 0 {
        let _ = writeln!(out, "    {unchanged} unchanged");
    }
    if !preview.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "\nLeft alone (not in the manifests and not named by the operator):"
        );
        for u in &preview.unmanaged {
            let _ = writeln!(out, "    {} {:?} {}", u.id, u.name, u.origin);
        }
    }
    if !preview.problems.is_empty() {
        let _ = writeln!(out, "\nProblems (these CspEntries would not be synced):");
        for p in &preview.problems {
            let _ = writeln!(out, "  ! {}: {}: {}", p.entry, p.reason, p.message);
        }
    }
    let header = &preview.header;
    let estimated = if header.source == "Tenant" {
        ", estimated"
    } else {
        ""
    };
    match header.length {
        Some(length) => {
            let _ = writeln!(
                out,
                "\nHeader ({} source{estimated}): {length} characters",
                header.source
            );
        }
        None => {
            let error = header.error.as_deref().unwrap_or("does not compile");
            let _ = writeln!(out, "\nHeader ({} source): {error}", header.source);
        }
    }
    for limit in &header.limits {
        let verdict = if limit.fits { "fits" } else { "TOO LONG" };
        let _ = writeln!(out, "    {} (max {}): {verdict}", limit.target, limit.max);
    }
    let _ = writeln!(out, "\n{}", summary_line(preview));
    out
}

fn line(change: &EntryChange, width: usize) -> String {
    let (sign, word) = match change.change {
        Change::Create => ('+', "create"),
        Change::Update => ('~', "update"),
        Change::Delete => ('-', "delete"),
        Change::Adopt => ('=', "adopt"),
        Change::Unchanged => (' ', "unchanged"),
    };
    let mut text = format!(
        "  {sign} {word:<6}  {:<width$}  {}",
        change.entry, change.origin
    );
    if let (Some(id), Some(name)) = (&change.remote_id, &change.remote_name) {
        let _ = write!(text, "  (tenant entry {id} {name:?}");
        if change.change == Change::Adopt {
            text.push_str(", no tenant write");
        }
        text.push(')');
    }
    text
}

fn summary_line(preview: &Preview) -> String {
    let problems = match preview.problems.len() {
        1 => "1 problem".to_owned(),
        n => format!("{n} problems"),
    };
    format!(
        "Plan: {} to create, {} to update, {} to delete; {} to adopt without a tenant write, {} unchanged, {} left alone, {problems}.",
        preview.count(Change::Create),
        preview.count(Change::Update),
        preview.count(Change::Delete),
        preview.count(Change::Adopt),
        preview.count(Change::Unchanged),
        preview.unmanaged.len(),
    )
}

/// The preview as one JSON object, with a `summary` of counts.
pub fn json(preview: &Preview) -> Value {
    let mut value = serde_json::to_value(preview).unwrap_or(Value::Null);
    value["summary"] = json!({
        "create": preview.count(Change::Create),
        "update": preview.count(Change::Update),
        "delete": preview.count(Change::Delete),
        "adopt": preview.count(Change::Adopt),
        "unchanged": preview.count(Change::Unchanged),
        "unmanaged": preview.unmanaged.len(),
        "problems": preview.problems.len(),
        "tenantWrites": preview.writes(),
    });
    value
}
