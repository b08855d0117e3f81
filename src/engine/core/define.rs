//! UpdatePipeline: a new declaration replaces a pipeline's, as a new
//! version. The workspace's CodePipeline JSON file is rewritten atomically
//! (so the next start reads the same thing), then the pipeline is loaded
//! again the way the engine loads it at start.

use super::{Engine, api};
use crate::api::{ApiError, EngineEvent, Reply};
use crate::config::workspace::WorkspacePipeline;
use crate::model::load::{Format, LoadOptions, load_bytes, load_path};
use crate::model::pipeline::Pipeline;
use crate::store::now_rfc3339;

impl Engine {
    pub(super) fn update_pipeline(&mut self, new: &Pipeline) -> Result<Reply, ApiError> {
        let name = new.name.clone();
        let ps = self.pipeline(&name)?;
        let running = ps
            .order
            .iter()
            .filter_map(|id| self.execs.get(id))
            .filter(|e| !e.terminal())
            .count();
        if running > 0 {
            return Err(api(
                "ConflictException",
                format!(
                    "pipeline {name} has {running} execution(s) in progress: stop them or let \
                     them finish, then update it"
                ),
            ));
        }
        let old = ps.def.clone();
        let next = ps.version + 1;
        let file = old.file.clone();
        // Only a CodePipeline JSON file can be written back as such.
        let on_disk = load_path(&file, &LoadOptions::default());
        if on_disk.format != Format::CodepipelineJson {
            return Err(api(
                "ValidationException",
                format!(
                    "pipeline {name} is declared in {} ({}): change it there, the engine only \
                     rewrites CodePipeline JSON files",
                    file.display(),
                    on_disk.format.as_str()
                ),
            ));
        }
        let decl = crate::model::declaration::declaration(new, next);
        let text = serde_json::to_string_pretty(&serde_json::json!({ "pipeline": decl }))
            .map_err(|e| api("InternalError", e.to_string()))?;
        let report = load_bytes(
            &file.display().to_string(),
            text.as_bytes(),
            &LoadOptions::default(),
        );
        if let Some(errors) = report.error_summary() {
            return Err(api(
                "InvalidStructureException",
                format!("the pipeline is not valid: {errors}"),
            ));
        }
        let Some(loaded) = report
            .pipelines
            .into_iter()
            .find(|p| p.pipeline.name == name)
        else {
            return Err(api(
                "InvalidStructureException",
                format!("the declaration does not read back as pipeline {name}"),
            ));
        };
        let tmp = file.with_extension("json.pipedeck-tmp");
        std::fs::write(&tmp, text.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &file))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                api(
                    "InternalError",
                    format!("could not write {}: {e}", file.display()),
                )
            })?;
        let wp = WorkspacePipeline {
            file,
            pipeline: loaded.pipeline,
            project_buildspecs: old.project_buildspecs.clone(),
        };
        // Its executions come back from the store, as at start.
        let ids: Vec<String> = self.pipeline(&name)?.order.clone();
        for id in &ids {
            self.execs.remove(id);
            // What it reads back is what the store holds.
            self.written.remove(id);
        }
        self.load_pipeline(&wp, &now_rfc3339())
            .map_err(|e| api("InternalError", e.to_string()))?;
        let version = self.pipeline(&name)?.version;
        let _ = self.events.send(EngineEvent::PipelineUpdated {
            pipeline_name: name.clone(),
            pipeline_version: version,
        });
        self.get_pipeline(&name, None)
    }
}
