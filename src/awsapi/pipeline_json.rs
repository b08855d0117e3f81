//! CreatePipeline / UpdatePipeline / DeletePipeline over the API; the
//! declaration JSON itself is `model::declaration`.

pub use crate::model::declaration::declaration;

/// CreatePipeline / UpdatePipeline / DeletePipeline. The definition in the
/// body is read and validated like `pipedeck validate` does (an invalid one
/// is refused with `InvalidStructureException` listing the problems), but a
/// running engine cannot take a new definition yet: nothing is written and
/// the answer says what is missing.
/// UpdatePipeline: the declaration is read and validated like `pipedeck
/// validate` does, then the engine takes it as the pipeline's next version
/// (rewriting the workspace's JSON file). The answer is the new
/// declaration, as AWS answers.
pub async fn update(
    ctx: &super::Ctx,
    caller: &super::Caller,
    i: super::input::Input<'_>,
) -> super::AwsResult {
    let pipeline = read_declaration(&i)?;
    let reply = ctx
        .call(
            caller,
            crate::api::Request::UpdatePipeline {
                pipeline: Box::new(pipeline),
            },
        )
        .await?;
    match reply {
        crate::api::Reply::Pipeline { pipeline, metadata } => Ok(serde_json::json!({
            "pipeline": declaration(&pipeline, metadata.pipeline_version),
        })),
        other => Err(super::AwsError::new(
            "InternalFailure",
            format!("UpdatePipeline: unexpected answer {other:?}"),
        )),
    }
}

/// The `pipeline` member read as the model, or the AWS error that says
/// what is wrong with it.
fn read_declaration(
    i: &super::input::Input<'_>,
) -> Result<crate::model::pipeline::Pipeline, super::AwsError> {
    use super::AwsError;
    let p = i.value("pipeline").ok_or_else(|| {
        AwsError::validation(
            "1 validation error detected: Value null at 'pipeline' failed to satisfy constraint: \
             Member must not be null",
        )
    })?;
    let text = serde_json::json!({ "pipeline": p }).to_string();
    let report = crate::model::load::load_bytes(
        "pipeline",
        text.as_bytes(),
        &crate::model::load::LoadOptions::default(),
    );
    if let Some(errors) = report.error_summary() {
        return Err(AwsError::new(
            "InvalidStructureException",
            format!("the pipeline is not valid: {errors}"),
        ));
    }
    report
        .pipelines
        .into_iter()
        .next()
        .map(|p| p.pipeline)
        .ok_or_else(|| AwsError::new("InvalidStructureException", "no pipeline in the body"))
}

pub fn check_update(ctx: &super::Ctx, op: &str, i: super::input::Input<'_>) -> super::AwsResult {
    use super::AwsError;
    if op == "DeletePipeline" {
        let name = i.str_len("name", 1, 100)?;
        return Err(AwsError::not_built(
            "CodePipeline",
            op,
            &format!(
                ": the engine cannot drop pipeline {name} while it runs (needs \
                 Request::DeletePipeline in src/api and the engine); remove its file from the \
                 workspace and restart instead"
            ),
        ));
    }
    read_declaration(&i)?;
    let _ = ctx;
    Err(AwsError::not_built(
        "CodePipeline",
        op,
        ": the definition is valid, but the engine cannot add a pipeline to a running \
         workspace (add its file to pipedeck.toml and restart; UpdatePipeline changes an \
         existing one); nothing was written",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::load::{LoadOptions, load_bytes, load_path};

    /// What get-pipeline prints reads back as the same pipeline.
    #[test]
    fn declarations_read_back_as_the_same_model() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in [
            "assets/demo/pipeline.json",
            "assets/example-pipeline.json",
            "assets/example-pipeline.toml",
        ] {
            let r = load_path(&root.join(file), &LoadOptions::default());
            assert!(r.ok(), "{file}: {:?}", r.diagnostics);
            let p = &r.pipelines[0].pipeline;
            let text = serde_json::json!({ "pipeline": declaration(p, 3) }).to_string();
            let back = load_bytes(
                "get-pipeline.json",
                text.as_bytes(),
                &LoadOptions::default(),
            );
            let errors: Vec<_> = back.errors().collect();
            assert!(errors.is_empty(), "{file}: {errors:?}\n{text}");
            let q = &back.pipelines[0].pipeline;
            assert_eq!(q.stages, p.stages, "{file}");
            assert_eq!(q.variables, p.variables, "{file}");
            assert_eq!(q.triggers, p.triggers, "{file}");
            assert_eq!(q.execution_mode, p.execution_mode, "{file}");
            assert_eq!(q.effective_type(), p.effective_type(), "{file}");
            assert_eq!(q.version, Some(3));
        }
    }
}
