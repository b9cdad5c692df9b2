//! `homestead crds`: the User, Session and Project CustomResourceDefinitions as YAML.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use homestead_core::resources::{Project, Session, User};

/// Arguments of `homestead crds`.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD (`<name>.yaml`, e.g. `users.homestead.dev.yaml`) into this
    /// directory instead of printing them; `manifests/crds` keeps the committed copies.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Every CRD homestead defines.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![User::crd(), Session::crd(), Project::crd()]
}

/// One CRD as a YAML document (with a leading `---`), as committed in `manifests/crds/`.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> anyhow::Result<String> {
    let name = crd.metadata.name.as_deref().unwrap_or("unnamed");
    let body = serde_saphyr::to_string(crd)
        .with_context(|| format!("cannot serialize CustomResourceDefinition {name}"))?;
    Ok(format!("---\n{body}"))
}

/// The file name a CRD is committed under: `<metadata.name>.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// Both CRDs as one multi-document YAML text.
pub fn crds_yaml() -> anyhow::Result<String> {
    crds().iter().map(crd_yaml).collect()
}

/// Runs `homestead crds`.
pub fn run(args: CrdsArgs) -> anyhow::Result<ExitCode> {
    match args.out {
        None => print!("{}", crds_yaml()?),
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for crd in crds() {
                let path = dir.join(crd_file_name(&crd));
                std::fs::write(&path, crd_yaml(&crd)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_to_the_same_crds() {
        for crd in crds() {
            let text = crd_yaml(&crd).unwrap();
            let back: CustomResourceDefinition =
                serde_saphyr::from_str(text.trim_start_matches("---\n")).unwrap();
            assert_eq!(back, crd);
        }
        assert_eq!(
            crds().iter().map(crd_file_name).collect::<Vec<_>>(),
            [
                "users.homestead.dev.yaml",
                "sessions.homestead.dev.yaml",
                "projects.homestead.dev.yaml"
            ]
        );
    }
}
