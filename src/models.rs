//! The model catalog: which names clients may use and what they become upstream.

use crate::config::ModelsConfig;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ModelCatalog {
    config: ModelsConfig,
}

impl ModelCatalog {
    pub fn new(config: ModelsConfig) -> Self {
        Self { config }
    }

    /// The upstream model for a client's model name: an alias is rewritten; an unknown name
    /// becomes `models.default` only when `models.fallback` is on (otherwise Model Studio
    /// decides, so new upstream models work without a gateway change).
    pub fn resolve<'a>(&'a self, requested: &'a str) -> &'a str {
        if let Some(target) = self.config.aliases.get(requested) {
            return target;
        }
        if self.config.fallback && !self.is_known(requested) {
            return &self.config.default;
        }
        requested
    }

    /// Whether `name` (an upstream model, after aliases) is configured here: listed in
    /// `models.available`, `models.default`, or an alias target.
    pub fn is_known(&self, name: &str) -> bool {
        self.config.available.iter().any(|m| m == name)
            || self.config.default == name
            || self.config.aliases.values().any(|m| m == name)
    }

    /// Every model and alias, in OpenAI's list shape.
    pub fn list(&self) -> Value {
        let data: Vec<Value> = self
            .ids()
            .map(|(id, alias)| self.entry(id, alias))
            .collect();
        json!({ "object": "list", "data": data })
    }

    /// One model or alias in OpenAI's shape, if configured.
    pub fn get(&self, id: &str) -> Option<Value> {
        self.ids()
            .find(|(name, _)| *name == id)
            .map(|(name, alias)| self.entry(name, alias))
    }

    fn ids(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        let mut real: Vec<&str> = self.config.available.iter().map(String::as_str).collect();
        if !real.contains(&self.config.default.as_str()) {
            real.push(&self.config.default);
        }
        real.into_iter().map(|m| (m, None)).chain(
            self.config
                .aliases
                .iter()
                .map(|(alias, target)| (alias.as_str(), Some(target.as_str()))),
        )
    }

    fn entry(&self, id: &str, alias_of: Option<&str>) -> Value {
        let mut entry = json!({
            "id": id,
            "object": "model",
            "created": 0,
            "owned_by": if alias_of.is_some() { "qwen-gateway" } else { "alibaba-cloud" },
        });
        if let Some(target) = alias_of {
            entry["alias_of"] = json!(target);
        }
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(fallback: bool) -> ModelCatalog {
        ModelCatalog::new(ModelsConfig {
            default: "qwen3-max".into(),
            fallback,
            available: vec!["qwen3-max".into(), "qwen-plus".into()],
            aliases: [("gpt-4o".to_string(), "qwen3-max".to_string())].into(),
        })
    }

    #[test]
    fn aliases_and_fallback() {
        let c = catalog(false);
        assert_eq!(c.resolve("gpt-4o"), "qwen3-max");
        assert_eq!(c.resolve("qwen-plus"), "qwen-plus");
        assert_eq!(c.resolve("something-new"), "something-new");
        assert_eq!(catalog(true).resolve("something-new"), "qwen3-max");
    }

    #[test]
    fn list_and_get() {
        let c = catalog(false);
        let list = c.list();
        let ids: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["qwen3-max", "qwen-plus", "gpt-4o"]);
        assert_eq!(c.get("gpt-4o").unwrap()["alias_of"], "qwen3-max");
        assert!(c.get("nope").is_none());
    }
}
