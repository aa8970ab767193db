//! What `launch import --container` reads: the container as created, and
//! the configuration of its image (to subtract what came from the image).

use bollard::models::{ContainerInspectResponse, ImageConfig};
use bollard::query_parameters::InspectContainerOptions;

use super::DockerEngine;
use crate::engine::Result;

impl DockerEngine {
    /// The container `name` and its image's configuration (`None` when the
    /// image is gone).
    pub async fn inspect_for_import(
        &self,
        name: &str,
    ) -> Result<(ContainerInspectResponse, Option<ImageConfig>)> {
        let container = self
            .within(
                format!("inspecting container {name}"),
                self.bounds.call,
                self.docker
                    .inspect_container(name, None::<InspectContainerOptions>),
            )
            .await??;
        let image_id = container.image.clone().unwrap_or_default();
        let image = self
            .within(
                format!("inspecting image {image_id}"),
                self.bounds.call,
                self.docker.inspect_image(&image_id),
            )
            .await?;
        let image = match image {
            Ok(i) => i.config,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        Ok((container, image))
    }
}
