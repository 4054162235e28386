//! Tasks imported from a trace, kept compactly: a trace of 10⁶ tasks is
//! 10⁶ of these (72 bytes each, names in one shared buffer), sorted
//! by submission time, not the file's text.

use std::collections::BTreeMap;

use super::template::Draw;
use crate::api::pod::ANNOTATION_EXIT_CODE;
use crate::sim::{SimDuration, SimTime};

/// One task: when it is submitted, what it asks for, how it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task {
    pub at: SimTime,
    /// How long it runs once started; `None`: until the end of the run.
    pub run_for: Option<SimDuration>,
    /// Never started in the trace: deleted then, wherever it got to.
    pub delete_at: Option<SimTime>,
    pub cpu_milli: u32,
    pub memory_mib: u32,
    pub gpus: u32,
    /// The share of one GPU the task asked for, in thousandths (GPU
    /// sharing); kept as an annotation, as whole GPUs are what the
    /// `nvidia.com/gpu` extended resource can count.
    pub gpu_milli: u32,
    /// Index into [`TaskTable::gpu_models`]; 0 is "any model".
    pub gpu_model: u16,
    /// Index into [`TaskTable::classes`].
    pub class: u16,
    pub failed: bool,
    name_end: u32,
}

/// Every task of one import, in submission order (ties in file order).
#[derive(Debug, Default)]
pub struct TaskTable {
    tasks: Vec<Task>,
    names: String,
    /// Accepted GPU models per task kind (`V100M16|V100M32`), `[0]` empty.
    gpu_models: Vec<Vec<String>>,
    /// The trace's QoS classes (`LS`, `BE`, …), kept as a label.
    classes: Vec<String>,
    /// The label key for a task's QoS class.
    pub class_label: String,
}

impl TaskTable {
    pub fn new(class_label: &str) -> Self {
        TaskTable {
            gpu_models: vec![Vec::new()],
            class_label: class_label.into(),
            ..Default::default()
        }
    }

    /// Adds a task; `name` is kept in the shared buffer.
    pub fn push(&mut self, mut task: Task, name: &str) {
        self.names.push_str(name);
        task.name_end = self.names.len() as u32;
        self.tasks.push(task);
    }

    /// The index of a GPU model list, adding it if new.
    pub fn gpu_model_index(&mut self, models: Vec<String>) -> u16 {
        intern(&mut self.gpu_models, models)
    }

    pub fn class_index(&mut self, class: &str) -> u16 {
        intern(&mut self.classes, class.to_string())
    }

    /// Sorts by submission time; a stable sort, so ties keep file order.
    pub fn finish(&mut self) {
        self.tasks.shrink_to_fit();
        self.names.shrink_to_fit();
        // Traces are written in submission order, nearly always.
        if self.tasks.is_sorted_by_key(|t| t.at) {
            return;
        }
        // The names buffer is indexed by each task's end offset, and a
        // task's start is the previous task's end in *file* order; keep
        // both by recording starts before sorting.
        let mut starts = Vec::with_capacity(self.tasks.len());
        let mut prev = 0;
        for t in &self.tasks {
            starts.push(prev);
            prev = t.name_end;
        }
        let mut order: Vec<usize> = (0..self.tasks.len()).collect();
        order.sort_by_key(|&i| self.tasks[i].at);
        let mut names = String::with_capacity(self.names.len());
        let mut tasks = Vec::with_capacity(self.tasks.len());
        for i in order {
            let mut t = self.tasks[i];
            names.push_str(&self.names[starts[i] as usize..t.name_end as usize]);
            t.name_end = names.len() as u32;
            tasks.push(t);
        }
        self.tasks = tasks;
        self.names = names;
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Task> {
        self.tasks.get(i)
    }

    pub fn name(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.tasks[i - 1].name_end
        };
        &self.names[start as usize..self.tasks[i].name_end as usize]
    }

    /// The values task `i` writes into its pod.
    pub fn draw(&self, i: usize) -> Draw {
        let t = &self.tasks[i];
        let mut d = Draw::default();
        d.requests.insert("cpu".into(), format!("{}m", t.cpu_milli));
        d.requests
            .insert("memory".into(), format!("{}Mi", t.memory_mib));
        if t.gpus > 0 {
            let n = t.gpus.to_string();
            d.requests.insert(super::GPU.into(), n.clone());
            d.limits.insert(super::GPU.into(), n);
            d.annotations
                .insert("kubesim.io/gpu-milli".into(), t.gpu_milli.to_string());
            let models = &self.gpu_models[t.gpu_model as usize];
            if !models.is_empty() {
                d.node_in = Some((super::GPU_PRODUCT_LABEL.into(), models.clone()));
            }
        }
        d.run_for = t.run_for;
        if t.failed {
            d.annotations
                .insert(ANNOTATION_EXIT_CODE.into(), "1".into());
        }
        if let Some(c) = self.classes.get(t.class as usize) {
            d.labels.insert(self.class_label.clone(), c.clone());
        }
        d
    }

    /// How many tasks ask for each resource, for the load summary.
    pub fn totals(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        m.insert("tasks", self.tasks.len() as u64);
        m.insert(
            "gpu tasks",
            self.tasks.iter().filter(|t| t.gpus > 0).count() as u64,
        );
        m
    }
}

fn intern<T: PartialEq>(list: &mut Vec<T>, v: T) -> u16 {
    if let Some(i) = list.iter().position(|x| *x == v) {
        return i as u16;
    }
    list.push(v);
    (list.len() - 1).min(u16::MAX as usize) as u16
}

impl Task {
    /// A task submitted at `at` asking for CPU and memory only.
    pub fn new(at: SimTime, cpu_milli: u32, memory_mib: u32) -> Self {
        Task {
            at,
            run_for: None,
            delete_at: None,
            cpu_milli,
            memory_mib,
            gpus: 0,
            gpu_milli: 0,
            gpu_model: 0,
            class: 0,
            failed: false,
            name_end: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_keeps_each_task_its_name_and_ties_in_file_order() {
        let mut t = TaskTable::new("qos");
        t.push(Task::new(SimTime(30), 1, 1), "late");
        t.push(Task::new(SimTime(10), 2, 2), "first");
        t.push(Task::new(SimTime(10), 3, 3), "second");
        t.finish();
        let names: Vec<&str> = (0..t.len()).map(|i| t.name(i)).collect();
        assert_eq!(names, ["first", "second", "late"]);
        assert_eq!(t.get(2).unwrap().cpu_milli, 1);
    }

    #[test]
    fn a_task_is_small() {
        // 72 bytes: a million tasks are 72 MB, not the 77 MB of their text
        // plus the parsed strings.
        assert!(
            std::mem::size_of::<Task>() <= 72,
            "{}",
            std::mem::size_of::<Task>()
        );
    }
}
