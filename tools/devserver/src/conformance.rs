//! OpenBox's own contract check for hook payloads: `assert_hook_wire_shape` of the base Python
//! package `openbox-sdk-python` (module `openbox_core.conformance.fake_core`), installed from
//! PyPI into `<project>/.devenv/conformance` when missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The PyPI package and version whose check hook payloads must pass.
pub const CONFORMANCE_PACKAGE: &str = "openbox-sdk-python==1.4.0";
/// Environment variable naming a Python that can import the check (set by `cargo xtask test`).
pub const ENV_CONFORMANCE_PYTHON: &str = "OPENBOX_TEST_CONFORMANCE_PYTHON";

const MODULE: &str = "openbox_core.conformance.fake_core";

fn imports_the_check(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {MODULE}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A Python interpreter that can import the check: `$OPENBOX_TEST_CONFORMANCE_PYTHON`, else
/// the project-local venv, created and filled from PyPI when it cannot.
pub fn conformance_python(project_root: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(ENV_CONFORMANCE_PYTHON).filter(|p| !p.is_empty()) {
        let python = PathBuf::from(p);
        return if imports_the_check(&python) {
            Ok(python)
        } else {
            Err(format!(
                "${ENV_CONFORMANCE_PYTHON} is {} but it cannot import {MODULE}",
                python.display()
            ))
        };
    }
    let venv = project_root.join(".devenv").join("conformance");
    let python = venv.join("bin").join("python");
    if imports_the_check(&python) {
        return Ok(python);
    }
    let system = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!(
        "installing OpenBox's contract check: {system} -m venv {} && pip install {CONFORMANCE_PACKAGE}",
        venv.display()
    );
    let install = |cmd: &mut Command, what: &str| {
        crate::run_quietly(cmd, what)
            .map_err(|e| format!("cannot install {CONFORMANCE_PACKAGE}: {e}"))
    };
    install(
        Command::new(&system).arg("-m").arg("venv").arg(&venv),
        "create the venv",
    )?;
    install(
        Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            CONFORMANCE_PACKAGE,
        ]),
        "pip install",
    )?;
    if imports_the_check(&python) {
        Ok(python)
    } else {
        Err(format!(
            "{} cannot import {MODULE} after pip install",
            python.display()
        ))
    }
}
